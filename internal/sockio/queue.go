package sockio

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// TryWriter writes without waiting: as much of bufs as the connection takes now, in order,
// returning the bytes written, fewer than given when its send buffer is full. The error is
// the connection's failure, never "would block". It may change bufs' elements. A *Writer is
// one (kernel sockets); the transparent stack's connections are another.
type TryWriter interface {
	TryWrite(bufs [][]byte) (int, error)
}

// Buffer is what a Queue holds: pooled bytes that it releases once written whole, or dropped.
type Buffer interface {
	Bytes() []byte
	Advance(n int) // drop the first n bytes, written already
	Release()
}

// State says what a flush left to its caller.
type State uint8

const (
	// Released: everything queued was written (or dropped, the queue being closed) and the
	// right to write was given up.
	Released State = iota
	// Held: the caller still holds the right to write. After Flush: the connection is full, so
	// hand the right to a goroutine that waits (FlushWait). After FlushWait: call it again.
	Held
	// Ended: everything up to the end mark (End) was written and the right given up; the
	// caller now shuts down the connection's writing. Reported once.
	Ended
)

// Queue is the write queue of one connection, shared by the goroutines that produce its
// buffers. Exactly one goroutine at a time holds the right to write: the producer that finds no
// one writing takes it and writes everything queued itself, without waiting (Flush); when the
// connection is full it hands the right, with what is left, to a goroutine that waits
// (FlushWait), while other producers only queue, so order is kept. No goroutine is started or
// woken per buffer, and nothing is allocated once the queue's arrays have grown.
//
// A new (zero) Queue's right to write is held by its creator, so nothing overtakes what the
// creator must write or wait for first; it gives the right up with its first flush.
type Queue[B Buffer] struct {
	mu      sync.Mutex
	bufs    []B
	spare   []B // an emptied queue's array, for reuse
	free    bool
	closed  bool
	end     bool // an end of stream follows the queue
	ended   bool // ... and was reported
	queued  atomic.Int64
	iov     net.Buffers // the holder's vectors
	written int         // bytes of iov, for Flush to tell a full connection
}

// Push queues b and reports whether the caller now holds the right to write, and how many
// bytes wait to be written (the holder's batch included). On a closed queue it releases b
// and returns net.ErrClosed.
func (q *Queue[B]) Push(b B) (write bool, queued int, err error) {
	n := int64(len(b.Bytes()))
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		b.Release()
		return false, 0, net.ErrClosed
	}
	q.bufs = append(q.bufs, b)
	write, q.free = q.free, false
	queued = int(q.queued.Add(n))
	q.mu.Unlock()
	return write, queued, nil
}

// End marks the end of the stream after what is queued, and reports whether the caller now
// holds the right to write; a flush then reports Ended once the queue is written.
func (q *Queue[B]) End() (write bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.end = true
	write = q.free && !q.closed
	q.free = q.free && !write
	return write
}

// Acquire takes the right to write if no one holds it, to write something of the caller's
// own (a heartbeat); the caller gives it up with a flush.
func (q *Queue[B]) Acquire() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	ok := q.free && !q.closed
	q.free = q.free && !ok
	return ok
}

// Len returns the bytes not yet written.
func (q *Queue[B]) Len() int { return int(q.queued.Load()) }

// Close drops what is queued and queues nothing more; a holder writing meanwhile drops the
// rest of its batch. It is idempotent.
func (q *Queue[B]) Close() {
	q.mu.Lock()
	q.closed = true
	bufs := q.bufs
	q.bufs = nil
	q.mu.Unlock()
	for _, b := range bufs {
		b.Release()
	}
}

// Flush writes the queue through w as far as w takes it without waiting, the caller holding
// the right to write. It returns the bytes written and how many buffers were written whole,
// and Held when w is full: then the caller hands the right to a goroutine that waits.
func (q *Queue[B]) Flush(w TryWriter) (n, bufs int, st State, err error) {
	for {
		batch, st := q.take(0)
		if st != Held {
			return n, bufs, st, nil
		}
		m, err := w.TryWrite(q.iov)
		k, st := q.wrote(batch, m)
		n, bufs = n+m, bufs+k
		if err != nil || st != Held {
			return n, bufs, st, err
		}
		if m < q.written {
			return n, bufs, Held, nil
		}
	}
}

// FlushWait writes, waiting, one batch of the queue of at most maxBytes (unless maxBytes
// <= 0; at least one buffer) to w, the caller holding the right to write; it returns Held
// while more is queued. For a *net.TCPConn the batch is one writev.
func (q *Queue[B]) FlushWait(w io.Writer, maxBytes int) (n, bufs int, st State, err error) {
	batch, st := q.take(maxBytes)
	if st != Held {
		return 0, 0, st, nil
	}
	wv := q.iov
	m, err := wv.WriteTo(w)
	k, st := q.wrote(batch, int(m))
	return int(m), k, st, err
}

// take gives the holder the queue as its batch, with the vectors of its first buffers in
// q.iov; an empty or closed queue gives up the right instead.
func (q *Queue[B]) take(maxBytes int) ([]B, State) {
	q.mu.Lock()
	if len(q.bufs) == 0 || q.closed {
		st := q.release()
		q.mu.Unlock()
		return nil, st
	}
	batch := q.bufs
	q.bufs, q.spare = q.spare[:0], nil
	q.mu.Unlock()
	q.iov, q.written = q.iov[:0], 0
	for _, b := range batch[:min(len(batch), maxIOV)] {
		if maxBytes > 0 && q.written >= maxBytes {
			break
		}
		p := b.Bytes()
		q.iov = append(q.iov, p)
		q.written += len(p)
	}
	return batch, Held
}

// release gives up the right to write; q.mu is held.
func (q *Queue[B]) release() State {
	q.free = true
	if q.end && !q.ended && !q.closed {
		q.ended = true
		return Ended
	}
	return Released
}

// wrote accounts for n bytes of batch written: it releases the buffers written whole,
// advances a partly written one and puts the rest back in front of the queue; it gives the
// right up if nothing is left. It returns how many buffers were written whole.
func (q *Queue[B]) wrote(batch []B, n int) (int, State) {
	clear(q.iov) // keep no buffer reachable from here
	q.queued.Add(int64(-n))
	i := 0
	for ; i < len(batch) && n >= len(batch[i].Bytes()); i++ {
		n -= len(batch[i].Bytes())
		batch[i].Release()
	}
	if i < len(batch) {
		batch[i].Advance(n)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		for _, b := range batch[i:] {
			b.Release()
		}
		clear(batch)
		q.spare = batch[:0]
		return i, q.release()
	}
	if i == len(batch) {
		clear(batch)
		q.spare = batch[:0]
		if len(q.bufs) == 0 {
			return i, q.release()
		}
		return i, Held
	}
	rest := append(batch[:0], batch[i:]...)
	clear(batch[len(rest):])
	rest = append(rest, q.bufs...)
	clear(q.bufs)
	q.spare, q.bufs = q.bufs[:0], rest
	return i, Held
}
