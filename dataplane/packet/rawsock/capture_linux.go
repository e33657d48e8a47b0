package rawsock

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// CaptureConfig configures a Capturer.
type CaptureConfig struct {
	// Filter decides which packets the socket keeps, with the IP header at offset 0
	// (sockfilter.Assemble). Required: a Capturer never reads every packet of the host.
	Filter []bpf.RawInstruction
	// Ifindex limits capture to one interface; 0 captures on all.
	Ifindex int
	// Batch is the most packets one Read returns [64].
	Batch int
}

// Capturer reads the packets its filter keeps, in batches. Make one with NewCapturer.
type Capturer struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	mu    sync.Mutex            // one Read at a time: the message headers below are reused
	recv  func(fd uintptr) bool // made once, so that Read allocates nothing
	n     int                   // recv's batch size
	got   int                   // recv's result
	rerr  unix.Errno
	msgs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrLinklayer
	oob   [][]byte
}

// mmsghdr is struct mmsghdr: Go pads it to its alignment as C does (to 64 bytes on 64-bit
// systems, none on 32-bit ones, where an explicit pad broke every entry after the first).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

const auxLen = unix.SizeofCmsghdr + int(unsafe.Sizeof(unix.TpacketAuxdata{}))

// captureBuffer is the capture socket's receive buffer.
const captureBuffer = 8 << 20

// NewCapturer opens an AF_PACKET SOCK_DGRAM socket with protocol 0, attaches the filter,
// then binds it to all protocols (and cfg.Ifindex), so that it holds no packet the filter
// did not see. It needs CAP_NET_RAW.
func NewCapturer(cfg CaptureConfig) (*Capturer, error) {
	if len(cfg.Filter) == 0 {
		return nil, fmt.Errorf("rawsock: capture: no filter")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rawsock: capture: open packet socket: %w (packet-mode portals need CAP_NET_RAW)", err)
	}
	fail := func(op string, err error) (*Capturer, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("rawsock: capture: %s: %w", op, err)
	}
	prog := unix.SockFprog{Len: uint16(len(cfg.Filter)), Filter: (*unix.SockFilter)(unsafe.Pointer(&cfg.Filter[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fail("attach filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("ignore outgoing packets", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("ask for auxiliary data", err)
	}
	// A target's super-packets are up to 64 KiB each: the default buffer holds three, and
	// every one it cannot take is lost to the flow (the kernel's own stack drops it too, by
	// rstguard's rules) and costs the target's TCP a retransmission.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureBuffer); err != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, captureBuffer) // without CAP_NET_ADMIN: up to rmem_max
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: cfg.Ifindex}); err != nil {
		return fail("bind", err)
	}
	c := &Capturer{
		f:     os.NewFile(uintptr(fd), "rawsock-capture"),
		msgs:  make([]mmsghdr, cfg.Batch),
		iovs:  make([]unix.Iovec, cfg.Batch),
		names: make([]unix.RawSockaddrLinklayer, cfg.Batch),
		oob:   make([][]byte, cfg.Batch),
	}
	for i := range c.oob {
		c.oob[i] = make([]byte, unix.CmsgSpace(auxLen))
	}
	c.recv = func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.msgs[0])), uintptr(c.n), unix.MSG_TRUNC, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		c.got, c.rerr = int(r), e
		return true
	}
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("rawsock: capture: %w", err)
	}
	return c, nil
}

// unsafe.Sizeof(unix.SockFilter{}) must match bpf.RawInstruction's layout for the cast above.
var _ [unsafe.Sizeof(unix.SockFilter{}) - unsafe.Sizeof(bpf.RawInstruction{})]struct{}
var _ [unsafe.Sizeof(bpf.RawInstruction{}) - unsafe.Sizeof(unix.SockFilter{})]struct{}

// Read waits for at least one packet, then reads up to len(bufs) (and the configured
// batch) of them with one recvmmsg: packet i goes to bufs[i][offset:] (the bytes before
// offset are headroom for the caller's headers) and is described by infos[i]. It returns
// the number of packets read. A packet longer than its buffer is cut; infos[i].Size tells.
// After Close, Read returns an error wrapping net.ErrClosed. The caller keeps the buffers.
func (c *Capturer) Read(bufs [][]byte, infos []Info, offset int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(bufs), len(infos), len(c.msgs))
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		b := bufs[i][offset:]
		c.iovs[i] = unix.Iovec{Base: unsafe.SliceData(b)}
		c.iovs[i].SetLen(len(b))
		h := &c.msgs[i].hdr
		*h = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&c.names[i])),
			Namelen: unix.SizeofSockaddrLinklayer,
			Iov:     &c.iovs[i],
			Control: &c.oob[i][0],
		}
		h.SetIovlen(1)
		h.SetControllen(len(c.oob[i]))
	}
	c.n = n
	if err := c.rc.Read(c.recv); err != nil {
		return 0, closedErr("read", &c.closed, err)
	}
	got, rerr := c.got, c.rerr
	if rerr != 0 {
		return 0, fmt.Errorf("rawsock: read: %w", rerr)
	}
	for i := range got {
		m := &c.msgs[i]
		status := auxStatus(c.oob[i][:m.hdr.Controllen])
		infos[i] = Info{Size: int(m.len), Ifindex: int(c.names[i].Ifindex), Verified: status&unix.TP_STATUS_CSUM_VALID != 0}
		if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
			infos[i].Checksum = packet.Partial
		}
	}
	return got, nil
}

// auxStatus returns tp_status from a PACKET_AUXDATA control message in oob, or 0.
func auxStatus(oob []byte) uint32 {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && int(h.Len) >= auxLen {
			return (*unix.TpacketAuxdata)(unsafe.Pointer(&oob[unix.SizeofCmsghdr])).Status
		}
		next := unix.CmsgSpace(int(h.Len) - unix.SizeofCmsghdr)
		if next > len(oob) {
			return 0
		}
		oob = oob[next:]
	}
	return 0
}

// SetReadDeadline makes a waiting and any later Read return an error wrapping
// os.ErrDeadlineExceeded once t has passed; the zero time waits forever.
func (c *Capturer) SetReadDeadline(t time.Time) error { return c.f.SetReadDeadline(t) }

// Close closes the socket and unblocks a waiting Read. It is idempotent.
func (c *Capturer) Close() error {
	c.closed.Store(true)
	c.f.Close()
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
