package sockio

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
)

// tbuf is a Buffer that counts its releases.
type tbuf struct {
	p        []byte
	released int
}

func (b *tbuf) Bytes() []byte { return b.p }
func (b *tbuf) Advance(n int) { b.p = b.p[n:] }
func (b *tbuf) Release()      { b.released++ }

// fakeWriter takes at most room bytes per call (room < 0: everything), then fails with err
// if set.
type fakeWriter struct {
	room  int
	err   error
	out   bytes.Buffer
	calls int
}

func (w *fakeWriter) TryWrite(bufs [][]byte) (int, error) {
	w.calls++
	n := 0
	for _, b := range bufs {
		if w.room >= 0 {
			b = b[:min(len(b), w.room-n)]
		}
		w.out.Write(b)
		n += len(b)
	}
	return n, w.err
}

// Write is the waiting writer's: it takes everything.
func (w *fakeWriter) Write(p []byte) (int, error) { return w.out.Write(p) }

func bufs(sizes ...int) []*tbuf {
	var bs []*tbuf
	c := byte('a')
	for _, n := range sizes {
		bs = append(bs, &tbuf{p: bytes.Repeat([]byte{c}, n)})
		c++
	}
	return bs
}

func concat(bs []*tbuf) []byte {
	var all []byte
	for _, b := range bs {
		all = append(all, b.p...)
	}
	return all
}

func checkReleased(t *testing.T, bs []*tbuf, want int) {
	t.Helper()
	for i, b := range bs {
		if b.released != want {
			t.Fatalf("buffer %d released %d times, want %d", i, b.released, want)
		}
	}
}

// The right to write: a new queue's is its creator's; the producer that finds it free takes
// it, others only queue.
func TestQueueRightToWrite(t *testing.T) {
	var q Queue[*tbuf]
	bs := bufs(3, 4, 5)
	if write, _, _ := q.Push(bs[0]); write {
		t.Fatal("Push on a new queue took the right to write from its creator")
	}
	w := &fakeWriter{room: -1}
	if n, k, st, err := q.Flush(w); n != 3 || k != 1 || st != Released || err != nil {
		t.Fatalf("creator's Flush = %d, %d, %v, %v; want 3, 1, Released, nil", n, k, st, err)
	}
	if write, queued, _ := q.Push(bs[1]); !write || queued != 4 {
		t.Fatalf("Push on a free queue = %v, %d; want the right, 4 bytes queued", write, queued)
	}
	if write, queued, _ := q.Push(bs[2]); write || queued != 9 {
		t.Fatalf("Push while the right is held = %v, %d; want false, 9 bytes queued", write, queued)
	}
	if q.Acquire() {
		t.Fatal("Acquire took a held right")
	}
	if _, _, st, _ := q.Flush(w); st != Released || q.Len() != 0 {
		t.Fatalf("Flush = %v with %d bytes left, want Released, 0", st, q.Len())
	}
	if !q.Acquire() {
		t.Fatal("Acquire failed on a free queue")
	}
	if !bytes.Equal(w.out.Bytes(), concat(bufs(3, 4, 5))) {
		t.Fatalf("written %q", w.out.Bytes())
	}
	checkReleased(t, bs, 1)
}

// Flush writes as far as the writer takes it: a partly written buffer stays at the front,
// advanced, frames pushed meanwhile queue behind it, a writer that takes nothing ("would
// block") leaves everything in place, and FlushWait finishes in order.
func TestQueueFlushPartial(t *testing.T) {
	for _, tc := range []struct {
		name     string
		room     int
		wantN    int
		wantBufs int
	}{
		{"would block", 0, 0, 0},
		{"within the first buffer", 2, 2, 0},
		{"at a buffer's end", 10, 10, 1},
		{"into the second", 13, 13, 1},
		{"all but one byte", 29, 29, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q Queue[*tbuf]
			bs := bufs(10, 8, 12, 5)
			q.Push(bs[0])
			q.Push(bs[1])
			q.Push(bs[2])
			w := &fakeWriter{room: tc.room}
			n, k, st, err := q.Flush(w)
			if n != tc.wantN || k != tc.wantBufs || st != Held || err != nil {
				t.Fatalf("Flush = %d, %d, %v, %v; want %d, %d, Held, nil", n, k, st, err, tc.wantN, tc.wantBufs)
			}
			for i, b := range bs[:3] {
				if want := boolInt(i < tc.wantBufs); b.released != want {
					t.Fatalf("buffer %d released %d times, want %d", i, b.released, want)
				}
			}
			if q.Len() != 30-n {
				t.Fatalf("Len = %d, want %d", q.Len(), 30-n)
			}
			if write, _, _ := q.Push(bs[3]); write {
				t.Fatal("Push took the right while the flusher holds it")
			}
			w.room = -1
			for {
				_, _, st, err := q.FlushWait(w, 0)
				if err != nil {
					t.Fatal(err)
				}
				if st != Held {
					break
				}
			}
			if want := concat(bufs(10, 8, 12, 5)); !bytes.Equal(w.out.Bytes(), want) {
				t.Fatalf("written %q, want %q", w.out.Bytes(), want)
			}
			checkReleased(t, bs, 1)
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FlushWait writes at most maxBytes per call (at least one buffer); Flush offers at most
// IOV_MAX vectors per write and goes on while they are taken whole.
func TestQueueBatches(t *testing.T) {
	var q Queue[*tbuf]
	for range 3 {
		q.Push(&tbuf{p: make([]byte, 100)})
	}
	w := &fakeWriter{room: -1}
	var got []int
	for {
		n, _, st, err := q.FlushWait(w, 150)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if st != Held {
			break
		}
	}
	if fmt.Sprint(got) != "[200 100]" {
		t.Fatalf("FlushWait(150) wrote batches %v, want [200 100]", got)
	}

	q.Acquire()
	for range maxIOV + 10 {
		q.Push(&tbuf{p: []byte{1}})
	}
	w = &fakeWriter{room: -1}
	if n, k, st, err := q.Flush(w); n != maxIOV+10 || k != n || st != Released || err != nil || w.calls != 2 {
		t.Fatalf("Flush of %d buffers = %d, %d, %v, %v in %d writes; want all, Released, in 2", maxIOV+10, n, k, st, err, w.calls)
	}
}

// A failing writer's error comes back with what it took; what it did not take stays queued
// until Close releases it. Close releases what is queued, and what a holder was writing
// meanwhile; a closed queue takes nothing more.
func TestQueueErrorAndClose(t *testing.T) {
	var q Queue[*tbuf]
	bs := bufs(4, 4, 4)
	for _, b := range bs {
		q.Push(b)
	}
	broken := errors.New("broken pipe")
	if n, k, _, err := q.Flush(&fakeWriter{room: 6, err: broken}); n != 6 || k != 1 || !errors.Is(err, broken) {
		t.Fatalf("failing Flush = %d, %d, %v; want 6, 1, %v", n, k, err, broken)
	}
	q.Close()
	checkReleased(t, bs, 1)
	late := &tbuf{p: []byte("late")}
	if write, _, err := q.Push(late); write || !errors.Is(err, net.ErrClosed) || late.released != 1 {
		t.Fatalf("Push on a closed queue = %v, %v, released %d; want false, net.ErrClosed, 1", write, err, late.released)
	}
	if n, _, st, _ := q.Flush(&fakeWriter{room: -1}); n != 0 || st != Released {
		t.Fatalf("Flush of a closed queue = %d, %v; want 0, Released", n, st)
	}
	q.Close() // idempotent

	// Closed while a holder writes: the holder releases the rest of its batch.
	var q2 Queue[*tbuf]
	bs = bufs(4, 4)
	q2.Push(bs[0])
	q2.Push(bs[1])
	w := &closingWriter{q: &q2}
	if n, _, st, err := q2.Flush(w); n != 2 || st != Released || err != nil {
		t.Fatalf("Flush closed meanwhile = %d, %v, %v; want 2, Released, nil", n, st, err)
	}
	checkReleased(t, bs, 1)
}

// closingWriter closes its queue during the write, then takes two bytes.
type closingWriter struct{ q *Queue[*tbuf] }

func (w *closingWriter) TryWrite(bufs [][]byte) (int, error) {
	w.q.Close()
	return 2, nil
}

// The end mark follows the data: a flush reports Ended once, when everything before it is
// written; End on a free queue hands the caller the right to write.
func TestQueueEnd(t *testing.T) {
	var q Queue[*tbuf]
	q.Push(&tbuf{p: []byte("data")})
	if q.End() {
		t.Fatal("End took the creator's right")
	}
	w := &fakeWriter{room: 2}
	if _, _, st, _ := q.Flush(w); st != Held {
		t.Fatalf("Flush with data left = %v, want Held", st)
	}
	w.room = -1
	if _, _, st, _ := q.Flush(w); st != Ended {
		t.Fatalf("Flush to the end mark = %v, want Ended", st)
	}
	if !q.Acquire() {
		t.Fatal("the right was not given up at the end")
	}
	if _, _, st, _ := q.Flush(w); st != Released {
		t.Fatalf("Flush after the end = %v, want Released: Ended is reported once", st)
	}

	var free Queue[*tbuf]
	free.Flush(w)
	if !free.End() {
		t.Fatal("End on a free queue did not hand over the right")
	}
	if _, _, st, _ := free.Flush(w); st != Ended {
		t.Fatalf("Flush of an empty queue with an end mark = %v, want Ended", st)
	}
	var closed Queue[*tbuf]
	closed.Close()
	closed.End()
	if _, _, st, _ := closed.Flush(w); st != Released {
		t.Fatalf("Flush of a closed queue with an end mark = %v, want Released", st)
	}
}

// Queueing and writing allocate nothing once the queue's arrays have grown.
func TestQueueAllocatesNothing(t *testing.T) {
	var q Queue[*tbuf]
	q.Flush(&fakeWriter{}) // the creator gives up the right
	w := &fakeWriter{room: -1}
	bs := bufs(64, 64, 64, 64)
	data := make([][]byte, len(bs))
	for i, b := range bs {
		data[i] = b.p
	}
	run := func() {
		w.out.Reset()
		held := false
		for i, b := range bs {
			b.p = data[i]
			write, _, _ := q.Push(b)
			held = held || write
		}
		if held {
			q.Flush(w)
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("a push-and-flush round allocates %v times, want 0", n)
	}
	if q.Len() != 0 || w.out.Len() != 4*64 {
		t.Fatalf("%d bytes left queued, %d written; want 0, %d", q.Len(), w.out.Len(), 4*64)
	}
}
