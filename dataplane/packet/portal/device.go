package portal

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/tun"
)

// Device is the TUN device of a node's packet-mode inlets: one goroutine reads the clients'
// packets in batches and hands each to the inlet of its destination address and port, which
// gathers them into messages sent once the batch is read; the inlets' answers are written
// back in batches. No netstack is involved: the clients' kernel talks TCP to the target's.
type Device struct {
	dev tun.Packets
	log *slog.Logger

	mu     sync.RWMutex
	inlets map[netip.AddrPort]*Inlet

	wmu   sync.Mutex // one write at a time: the scratch buffers are reused
	wbufs [][]byte   // scratch, each with tun.Offset headroom
	out   [][]byte

	stray   atomic.Int64 // packets to no inlet, or not TCP
	strayed *ratelog.Logger
	closed  atomic.Bool
}

// NewDevice serves the packet inlets on dev, from Start on.
func NewDevice(dev tun.Packets, log *slog.Logger) *Device {
	if log == nil {
		log = slog.Default()
	}
	return &Device{dev: dev, log: log, inlets: map[netip.AddrPort]*Inlet{},
		strayed: ratelog.New(log, slog.LevelDebug, "packets on the packet inlets' device for no inlet", 10*time.Second)}
}

// Start runs the read loop until the device is closed.
func (d *Device) Start() { go d.readLoop() }

// Close stops the read loop's logging; the caller closes the device itself.
func (d *Device) Close() {
	d.closed.Store(true)
	d.strayed.Stop()
}

// add serves in's virtual address and port.
func (d *Device) add(in *Inlet) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inlets[in.cfg.Virtual] != nil {
		return errors.New("another packet inlet serves " + in.cfg.Virtual.String())
	}
	d.inlets[in.cfg.Virtual] = in
	return nil
}

func (d *Device) remove(in *Inlet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inlets[in.cfg.Virtual] == in {
		delete(d.inlets, in.cfg.Virtual)
	}
}

// Len returns the number of inlets served.
func (d *Device) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.inlets)
}

func (d *Device) readLoop() {
	mtu, err := d.dev.MTU()
	if err != nil || mtu <= 0 {
		mtu = tun.DefaultMTU
	}
	n := max(d.dev.BatchSize(), 1)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, tun.Offset+max(mtu, 65535))
	}
	sizes := make([]int, n)
	var touched []*Inlet
	failures := 0
	for {
		n, err := d.dev.Read(bufs, sizes, tun.Offset)
		if err != nil {
			if d.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			if failures > 100 {
				d.log.Error("packet inlets' device read failed; stopping", "err", err)
				return
			}
			d.log.Warn("packet inlets' device read", "err", err) // e.g. too many segments: the rest are still read
			if n == 0 {
				continue
			}
		}
		failures = 0
		d.mu.RLock()
		for i := range n {
			p, err := packet.Parse(bufs[i][tun.Offset : tun.Offset+sizes[i]])
			if err != nil {
				d.stray.Add(1)
				continue
			}
			in := d.inlets[p.Dst()]
			if in == nil { // a port of a virtual address that no inlet serves: refused
				d.stray.Add(1)
				d.strayed.Note(slog.String("to", p.Dst().String()))
				if r := packet.AppendResetFor(nil, &p); len(r) > 0 {
					d.write([][]byte{r})
				}
				continue
			}
			if in.fromClient(&p) && !in.touched {
				in.touched = true
				touched = append(touched, in)
			}
		}
		d.mu.RUnlock()
		for _, in := range touched {
			in.touched = false
			in.flush()
		}
		touched = touched[:0]
	}
}

// write writes packets to the device, copying each behind the headroom the device needs. A
// packet the device refuses is lost, as on a wire: TCP sends it again.
func (d *Device) write(pkts [][]byte) {
	d.writeEach(func(add func([]byte)) {
		for _, p := range pkts {
			add(p)
		}
	})
}

// writeEach writes the packets fill adds, in one device write: each is copied into a
// buffer of the device's own, behind the headroom it needs, so that the caller's buffer can
// go and nothing is allocated per packet.
func (d *Device) writeEach(fill func(add func(p []byte))) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.out = d.out[:0]
	fill(func(p []byte) {
		i := len(d.out)
		if i == len(d.wbufs) {
			d.wbufs = append(d.wbufs, make([]byte, 0, tun.Offset+65535))
		}
		d.out = append(d.out, append(d.wbufs[i][:tun.Offset], p...))
	})
	if len(d.out) == 0 {
		return
	}
	if _, err := d.dev.Write(d.out, tun.Offset); err != nil && !d.closed.Load() {
		d.log.Debug("packet inlets' device write", "err", err)
	}
}
