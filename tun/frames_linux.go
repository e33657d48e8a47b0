package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Frames reads and writes a device's packets as the kernel hands them over, each behind its
// virtio-net header (packet.VirtioHdrLen bytes): no checksum is computed or verified, no
// super-packet split or coalesced, as wireguard-go's Read and Write do. The packet-mode
// inlets use it, the netstack uses Read and Write; one device serves one of the two.
type Frames struct {
	rc syscall.RawConn

	rmu   sync.Mutex // one Read at a time: the fields below are its
	rbufs [][]byte
	sizes []int
	got   int
	rerr  unix.Errno
	read  func(fd uintptr) bool

	wmu   sync.Mutex // one Write at a time
	iov   [2]unix.Iovec
	werr  unix.Errno
	write func(fd uintptr) bool
}

// Frames opens d's frames. The device then hands out no super-packets (TSO off), only
// packets of its MTU with partial checksums: a packet-mode outlet may have to put them on a
// wire through a raw IP socket, which cannot cut them into segments.
func (d *Device) Frames() (*Frames, error) {
	rc, err := d.Device.File().SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: %w", err)
	}
	var ctlErr error
	if err := rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(d.name)
		if err == nil {
			err = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr)
		}
		if err == nil && ifr.Uint16()&unix.IFF_VNET_HDR == 0 {
			err = errors.New("the device has no virtio-net headers (IFF_VNET_HDR)")
		}
		if err == nil {
			err = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM)
		}
		ctlErr = err
	}); err != nil {
		return nil, fmt.Errorf("tun: %w", err)
	}
	if ctlErr != nil {
		return nil, fmt.Errorf("tun: frames of %s: %w", d.name, ctlErr)
	}
	f := &Frames{rc: rc}
	f.read = f.readFrames
	f.write = f.writeFrame
	return f, nil
}

func (f *Frames) readFrames(fd uintptr) bool {
	for f.got < len(f.rbufs) {
		b := f.rbufs[f.got]
		n, _, errno := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return f.got > 0 // wait only for the first
		case 0:
			f.sizes[f.got] = int(n)
			f.got++
			continue
		}
		f.rerr = errno
		return true
	}
	return true
}

// Read waits for a frame, then reads the frames waiting, up to len(bufs), each into its
// buffer; sizes[i] is frame i's length, header included. It returns how many it read.
func (f *Frames) Read(bufs [][]byte, sizes []int) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	f.rbufs, f.sizes, f.got, f.rerr = bufs[:min(len(bufs), len(sizes))], sizes, 0, 0
	err := f.rc.Read(f.read)
	f.rbufs, f.sizes = nil, nil
	switch {
	case f.got > 0:
		return f.got, nil // a later error comes back on the next read
	case err != nil:
		return 0, closed(err)
	case f.rerr != 0:
		return 0, f.rerr
	}
	return 0, nil
}

func (f *Frames) writeFrame(fd uintptr) bool {
	for {
		_, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&f.iov[0])), 2)
		if errno == unix.EINTR {
			continue
		}
		f.werr = errno
		return errno != unix.EAGAIN
	}
}

// Write writes one frame: virtio-net header h and packet p, in one system call.
func (f *Frames) Write(h, p []byte) error {
	if len(h) == 0 || len(p) == 0 {
		return errors.New("tun: write: an empty header or packet")
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.iov[0] = unix.Iovec{Base: &h[0]}
	f.iov[0].SetLen(len(h))
	f.iov[1] = unix.Iovec{Base: &p[0]}
	f.iov[1].SetLen(len(p))
	f.werr = 0
	err := f.rc.Write(f.write)
	f.iov = [2]unix.Iovec{} // keep no buffer reachable from here
	if err != nil {
		return closed(err)
	}
	if f.werr != 0 {
		return fmt.Errorf("tun: write: %w", f.werr)
	}
	return nil
}

// closed reports a closed device as os.ErrClosed, whatever the poller said.
func closed(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return os.ErrClosed
	}
	return fmt.Errorf("tun: %w", err)
}
