package impair

import (
	"container/heap"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Link is a running impaired link between two namespaces. Close removes its devices.
type Link struct {
	log   *slog.Logger
	epoch time.Time
	devs  [2]wgtun.Device // A's, B's
	names [2]string
	dirs  [2]*direction // A to B, B to A
	done  chan struct{}
	wg    sync.WaitGroup
	fails *ratelog.Logger // failed reads and writes of the devices

	closeOnce sync.Once
	closeErr  error
}

// offset is the headroom wireguard-go's device needs before each packet it writes (its
// virtio header), rounded up.
const offset = 16

// New makes a TUN device in each side's namespace, gives it the side's addresses, brings it
// up and starts moving packets between them through the impairments. The caller must Close
// the link; the namespaces stay the caller's. It needs CAP_NET_ADMIN.
func New(cfg Config) (*Link, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 1280 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("impair: MTU %d out of range: give 1280 to 65535 (0 is %d)", cfg.MTU, DefaultMTU)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var imps [2]Impairment
	for i, imp := range []Impairment{cfg.AtoB, cfg.BtoA} {
		var err error
		if imps[i], err = imp.withDefaults(cfg.MTU); err != nil {
			return nil, fmt.Errorf("impair: %s: %w", [2]string{"A to B", "B to A"}[i], err)
		}
	}
	var seeds [2][32]byte
	for i := range seeds {
		if _, err := io.ReadFull(cfg.Rand, seeds[i][:]); err != nil {
			return nil, fmt.Errorf("impair: seed the generator: %w", err)
		}
	}
	l := &Link{log: cfg.Logger.With("component", "impair"), epoch: time.Now(), done: make(chan struct{})}
	l.fails = ratelog.New(l.log, slog.LevelWarn, "impaired link: a packet could not be read or written", 10*time.Second)
	for i, ep := range []Endpoint{cfg.A, cfg.B} {
		dev, name, err := createDevice(ep, cfg.MTU)
		if err != nil {
			l.closeDevices()
			return nil, fmt.Errorf("impair: side %c: %w", 'A'+i, err)
		}
		l.devs[i], l.names[i] = dev, name
	}
	for i := range l.dirs {
		l.dirs[i] = &direction{
			link: l, from: l.devs[i], to: l.devs[1-i],
			name: [2]string{"A to B", "B to A"}[i], mtu: cfg.MTU,
			shaper: newShaper(imps[i], seeds[i]),
			wake:   make(chan struct{}, 1),
		}
	}
	for _, d := range l.dirs {
		l.wg.Add(2)
		go d.read()
		go d.write()
	}
	l.log.Info("impaired link up",
		"a", cfg.A.Netns, "a_device", l.names[0], "a_addrs", cfg.A.Addrs,
		"b", cfg.B.Netns, "b_device", l.names[1], "b_addrs", cfg.B.Addrs,
		"a_to_b", cfg.AtoB.String(), "b_to_a", cfg.BtoA.String())
	return l, nil
}

// Devices returns the names of A's and B's devices, each in its own namespace.
func (l *Link) Devices() (a, b string) { return l.names[0], l.names[1] }

// Stats returns the counters of each direction.
func (l *Link) Stats() (aToB, bToA Stats) { return l.dirs[0].stats(), l.dirs[1].stats() }

// Close stops moving packets, drops those still in the delay lines and removes both devices
// with their addresses and routes. It is idempotent.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.closeDevices() // unblocks the readers
		l.wg.Wait()
		for _, d := range l.dirs {
			d.drain()
		}
		l.fails.Stop()
		ab, ba := l.Stats()
		l.log.Info("impaired link closed", "a_to_b", ab, "b_to_a", ba)
	})
	return l.closeErr
}

func (l *Link) closeDevices() error {
	var errs []error
	for i, dev := range l.devs {
		if dev == nil {
			continue
		}
		if err := dev.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("impair: remove device %s: %w", l.names[i], err))
		}
	}
	return errors.Join(errs...)
}

func (l *Link) now() time.Duration { return time.Since(l.epoch) }

// createDevice makes ep's TUN device in its namespace and configures it.
func createDevice(ep Endpoint, mtu int) (dev wgtun.Device, name string, err error) {
	if ep.Name == "" {
		ep.Name = defaultName
	}
	err = netns.Do(ep.Netns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w (TUN devices need CAP_NET_ADMIN and the tun module)", err)
		}
		ifr, err := unix.NewIfreq(ep.Name)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("device name %q: %w", ep.Name, err)
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("create TUN device %q: %w", ep.Name, err)
		}
		// Unmonitored: the link watches no events, so it starts none of wireguard-go's
		// listeners (which would block on an events channel nobody reads).
		dev, name, err = wgtun.CreateUnmonitoredTUNFromFD(fd)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("open TUN device %q: %w", ep.Name, err)
		}
		if err := configure(name, ep.Addrs, mtu); err != nil {
			dev.Close()
			return err
		}
		return nil
	})
	return dev, name, err
}

// configure sets the device's MTU, queue and addresses and brings it up, in the calling
// thread's namespace.
func configure(name string, addrs []netip.Prefix, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("set the MTU of %s to %d: %w", name, mtu, err)
	}
	// The kernel drops what overflows the device's queue before this process reads it,
	// uncounted; the rate limit's queue should be where packets wait.
	if err := netlink.LinkSetTxQLen(link, 16384); err != nil {
		return fmt.Errorf("set the queue length of %s: %w", name, err)
	}
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", p, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}

// direction moves the packets one side sends to the other.
type direction struct {
	link     *Link
	from, to wgtun.Device
	name     string
	mtu      int
	shaper   *shaper // the reader's only
	seq      uint64  // the reader's only
	pool     sync.Pool

	mu   sync.Mutex
	line line // guarded by mu
	wake chan struct{}

	// written by the writer only
	lastSeq uint64
	sentAny bool

	received, passed, dropped, lost, overflowed, duplicated, reordered, delayed atomic.Uint64
}

func (d *direction) stats() Stats {
	return Stats{
		Received: d.received.Load(), Passed: d.passed.Load(), Dropped: d.dropped.Load(),
		Lost: d.lost.Load(), Overflowed: d.overflowed.Load(), Duplicated: d.duplicated.Load(),
		Reordered: d.reordered.Load(), Delayed: d.delayed.Load(),
	}
}

func (d *direction) get() *packet {
	if p, ok := d.pool.Get().(*packet); ok {
		return p
	}
	return &packet{buf: make([]byte, offset+d.mtu)}
}

// read takes packets from the sending side and puts them in the delay line.
func (d *direction) read() {
	defer d.link.wg.Done()
	n := d.from.BatchSize()
	bufs, sizes := make([][]byte, n), make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, offset+d.mtu)
	}
	for {
		n, err := d.from.Read(bufs, sizes, offset)
		if err != nil {
			select {
			case <-d.link.done:
				return
			default:
			}
			if errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADFD) {
				d.link.log.Warn("impaired link: device gone; was its namespace removed before the link was closed?", "direction", d.name, "err", err)
				return
			}
			// A packet the device could not split: it is gone; count it, and do not spin.
			d.received.Add(1)
			d.dropped.Add(1)
			d.link.fails.Note(slog.String("direction", d.name), slog.Any("err", err))
			time.Sleep(time.Millisecond)
			continue
		}
		now := d.link.now()
		for i := range n {
			d.admit(now, bufs[i][offset:offset+sizes[i]])
		}
	}
}

// admit decides the fate of pkt, read at now, and queues its copies.
func (d *direction) admit(now time.Duration, pkt []byte) {
	d.received.Add(1)
	d.seq++
	v := d.shaper.admit(now, len(pkt))
	if v.lost {
		d.lost.Add(1)
		d.dropped.Add(1)
		return
	}
	if v.duplicated {
		d.duplicated.Add(1)
	}
	d.overflowed.Add(uint64(v.overflowed))
	d.dropped.Add(uint64(v.overflowed))
	for i := range v.copies {
		d.mu.Lock()
		if len(d.line) >= d.shaper.imp.Limit {
			d.mu.Unlock()
			d.overflowed.Add(1)
			d.dropped.Add(1)
			continue
		}
		p := d.get()
		p.n = copy(p.buf[offset:], pkt)
		p.due, p.seq = v.due[i], d.seq
		heap.Push(&d.line, p)
		first := d.line[0] == p
		d.mu.Unlock()
		if p.due > now {
			d.delayed.Add(1)
		}
		if first {
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}
}

// write delivers the packets of the delay line to the receiving side when they are due.
func (d *direction) write() {
	defer d.link.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		var p *packet
		var wait time.Duration = -1
		if len(d.line) > 0 {
			if w := d.line[0].due - d.link.now(); w <= 0 {
				p = heap.Pop(&d.line).(*packet)
			} else {
				wait = w
			}
		}
		d.mu.Unlock()
		if p != nil {
			d.deliver(p)
			continue
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-d.done():
			return
		case <-d.wake:
		case <-tick:
		}
	}
}

func (d *direction) done() <-chan struct{} { return d.link.done }

func (d *direction) deliver(p *packet) {
	if d.sentAny && p.seq < d.lastSeq {
		d.reordered.Add(1)
	} else {
		d.lastSeq, d.sentAny = p.seq, true
	}
	if _, err := d.to.Write([][]byte{p.buf[:offset+p.n]}, offset); err != nil {
		d.dropped.Add(1)
		d.link.fails.Note(slog.String("direction", d.name), slog.Any("err", err))
	} else {
		d.passed.Add(1)
	}
	d.pool.Put(p)
}

// drain drops what is still in the delay line, once the writer has stopped.
func (d *direction) drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropped.Add(uint64(len(d.line)))
	d.line = nil
}
