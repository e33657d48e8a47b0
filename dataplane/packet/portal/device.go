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
	"github.com/adjacentnet/adjacent/routing"
)

// Frames is what a Device reads and writes: packets behind their virtio-net headers
// (tun.Frames), so that no checksum is computed or verified on the way.
type Frames interface {
	// Read waits for a frame, then reads those waiting, up to len(bufs); sizes[i] is frame
	// i's length, header included.
	Read(bufs [][]byte, sizes []int) (int, error)
	// Write writes one frame: header h, then packet p.
	Write(h, p []byte) error
}

// Device is the TUN device of a node's packet-mode inlets: one goroutine reads the clients'
// packets in batches and hands each to the inlet of its destination address and port, which
// gathers them into messages sent once the batch is read; the inlets' answers are written
// back one by one. No netstack is involved: the clients' kernel talks TCP to the target's,
// and the checksums they leave partial stay so end to end (packet.Offload).
type Device struct {
	dev Frames
	log *slog.Logger

	mu     sync.RWMutex
	inlets map[netip.AddrPort]*Inlet

	wmu  sync.Mutex // one write at a time: hdr is reused
	hdr  [packet.VirtioHdrLen]byte
	zero [packet.VirtioHdrLen]byte

	stray   atomic.Int64 // packets to no inlet, or not TCP
	strayed *ratelog.Logger
	closed  atomic.Bool
}

// NewDevice serves the packet inlets on dev, from Start on.
func NewDevice(dev Frames, log *slog.Logger) *Device {
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

// readBatch is how many frames one read of the device takes at most.
const readBatch = 32

// frameSize is the most one frame holds: a virtio-net header and the largest IP packet.
const frameSize = packet.VirtioHdrLen + 65535

func (d *Device) readLoop() {
	// Each frame is read into a pooled buffer with headroom: a large packet leaves in it as
	// its own message, and a new buffer takes its place.
	frames := make([]*routing.Buffer, readBatch)
	bufs := make([][]byte, readBatch)
	for i := range frames {
		frames[i] = routing.NewBuffer(frameSize)
		bufs[i] = frames[i].Available()[:frameSize]
	}
	sizes := make([]int, readBatch)
	var touched []*Inlet
	failures := 0
	for {
		n, err := d.dev.Read(bufs, sizes)
		if err != nil {
			if d.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			if failures > 100 {
				d.log.Error("packet inlets' device read failed; stopping", "err", err)
				return
			}
			d.log.Warn("packet inlets' device read", "err", err)
			continue
		}
		failures = 0
		d.mu.RLock()
		for i := range n {
			f := bufs[i][:sizes[i]]
			frames[i].Reset()
			frames[i].Extend(sizes[i])
			o, err := packet.ParseVirtioHdr(f)
			if err != nil {
				d.stray.Add(1)
				continue
			}
			p, err := packet.Parse(f[packet.VirtioHdrLen:])
			if err != nil {
				d.stray.Add(1)
				continue
			}
			in := d.inlets[p.Dst()]
			if in == nil { // a port of a virtual address that no inlet serves: refused
				d.stray.Add(1)
				d.strayed.Note(slog.String("to", p.Dst().String()))
				if r := packet.AppendResetFor(nil, &p); len(r) > 0 {
					d.writeReset(r)
				}
				continue
			}
			gathered, taken := in.fromClient(&p, o, frames[i])
			if taken {
				frames[i] = routing.NewBuffer(frameSize)
				bufs[i] = frames[i].Available()[:frameSize]
			}
			if gathered && !in.touched {
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

// write writes packet p to the device with offload o. A packet the device refuses is lost,
// as on a wire: TCP sends it again.
func (d *Device) write(p *packet.Packet, o packet.Offload) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	h := d.zero[:]
	if o.Checksum == packet.Partial {
		packet.PutVirtioHdr(d.hdr[:], p, o, 0)
		h = d.hdr[:]
	}
	d.writeLocked(h, p.Bytes())
}

// writeReset writes r, a RST the node made (its checksum complete), to the device.
func (d *Device) writeReset(r []byte) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.writeLocked(d.zero[:], r)
}

func (d *Device) writeLocked(h, b []byte) {
	if err := d.dev.Write(h, b); err != nil && !d.closed.Load() {
		d.log.Debug("packet inlets' device write", "err", err)
	}
}
