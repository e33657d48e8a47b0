package sockio

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxIOV is the kernel's IOV_MAX: the most vectors one writev takes.
const maxIOV = 1024

func rawConn(c any) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Writer writes to one socket without blocking. It is not safe for concurrent use: the
// caller holds the right to write (see routing/tcp and dataplane for how it is passed on).
type Writer struct {
	rc    syscall.RawConn
	iov   []unix.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // bound once: a method value per call would allocate
}

// NewWriter returns a Writer for c, or nil if c is not a socket.
func NewWriter(c any) *Writer {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	w := &Writer{rc: rc}
	w.fn = w.writev
	return w
}

func (w *Writer) writev(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		if errno == unix.EINTR {
			continue
		}
		w.n, w.errno = int(n), errno
		return true // never wait: a full socket is the caller's to handle
	}
}

// TryWrite writes as much of bufs as the socket takes now, in order, and returns the number of
// bytes written: fewer than given when the socket's buffer is full. The error is the
// socket's failure, never "would block".
func (w *Writer) TryWrite(bufs [][]byte) (int, error) {
	w.iov = w.iov[:0]
	for _, b := range bufs {
		if len(w.iov) == maxIOV {
			break
		}
		if len(b) > 0 {
			w.iov = append(w.iov, unix.Iovec{Base: &b[0]})
			w.iov[len(w.iov)-1].SetLen(len(b))
		}
	}
	if len(w.iov) == 0 {
		return 0, nil
	}
	w.n, w.errno = 0, 0
	err := w.rc.Write(w.fn)
	clear(w.iov) // keep no buffer reachable from here
	switch {
	case err != nil:
		return 0, err
	case w.errno == unix.EAGAIN:
		return 0, nil
	case w.errno != 0:
		return 0, w.errno
	}
	return w.n, nil
}

// Reader reads from one socket, taking a buffer only once the socket is readable. It is not
// safe for concurrent use.
type Reader struct {
	rc    syscall.RawConn
	get   func() []byte
	put   func()
	p     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool

	closed  bool // Check's results
	pending syscall.Errno
	checkFn func(fd uintptr)
	tryFn   func(fd uintptr) bool
}

// NewReader returns a Reader for c, or nil if c is not a socket. get supplies the buffer of a
// read; put takes it back when the socket turned out to have nothing to read.
func NewReader(c any, get func() []byte, put func()) *Reader {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	r := &Reader{rc: rc, get: get, put: put}
	r.fn = r.read
	r.checkFn = r.check
	r.tryFn = r.tryRead
	return r
}

func (r *Reader) read(fd uintptr) bool {
	if r.p == nil {
		r.p = r.get()
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		if errno == unix.EINTR {
			continue
		}
		if errno == unix.EAGAIN {
			r.put() // wait for readiness holding nothing
			r.p = nil
			return false
		}
		r.n, r.errno = int(n), errno
		return true
	}
}

// Read waits until the socket is readable and reads once into the buffer from get; a buffer
// taken while the socket had nothing to read has been given back with put. It returns io.EOF
// at the end of the stream.
func (r *Reader) Read() (int, error) {
	r.p, r.n, r.errno = nil, 0, 0
	err := r.rc.Read(r.fn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, r.errno
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// TryRead reads what the socket holds now into p, without waiting and without get: 0 and no
// error when it holds nothing yet. It returns io.EOF at the end of the stream.
func (r *Reader) TryRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.tryFn)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno == unix.EAGAIN:
		return 0, nil
	case r.errno != 0:
		return 0, r.errno
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

func (r *Reader) tryRead(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		if errno != unix.EINTR {
			r.n, r.errno = int(n), errno
			return true // never wait
		}
	}
}

// Check looks at the socket without reading or waiting. It returns the socket's pending
// error, clearing it: ECONNRESET once the peer has reset the connection. And it reports
// whether the connection is closed (TCP state CLOSE), which it is after a reset whose error
// another call has taken (a write's, and a read then returns io.EOF, not the reset), and
// after a clean close in both directions: only the caller, knowing whether it shut down its
// writing, can tell the two apart.
func (r *Reader) Check() (closed bool, err error) {
	r.closed, r.pending = false, 0
	if err := r.rc.Control(r.checkFn); err != nil {
		return false, err
	}
	if r.pending != 0 {
		return r.closed, r.pending
	}
	return r.closed, nil
}

func (r *Reader) check(fd uintptr) {
	if n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil {
		r.pending = syscall.Errno(n)
	}
	// The state is the first byte of struct tcp_info; not a TCP socket, not closed.
	state, err := unix.GetsockoptByte(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	r.closed = err == nil && state == unix.BPF_TCP_CLOSE
}
