package dataplane

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readiness waits until a socket has something to read without holding a read buffer, so an
// idle connection costs no buffer memory: it peeks one byte without consuming it.
type readiness struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool // bound once; a method value per wait would allocate
	one  [1]byte
}

func newReadiness(c any) *readiness {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &readiness{rc: rc}
	r.peek = func(fd uintptr) bool {
		// A raw recvfrom: unix.Recvfrom would allocate a socket address per call.
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.one[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		return errno != unix.EAGAIN // data, end of stream or an error: Read will tell
	}
	return r
}

// wait blocks until the socket is readable or closed.
func (r *readiness) wait() error { return r.rc.Read(r.peek) }
