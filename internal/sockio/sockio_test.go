package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func pair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// A full socket makes TryWrite return short instead of waiting, and what it reports written
// arrives in order.
func TestTryWriteStopsWhenFull(t *testing.T) {
	a, b := pair(t)
	w := NewWriter(a)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var sent bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the socket never filled")
		}
		n, err := w.TryWrite([][]byte{chunk[:100], chunk})
		if err != nil {
			t.Fatal(err)
		}
		sent.Write(append(chunk[:100:100], chunk...)[:n])
		if n < 100+len(chunk) {
			break
		}
	}
	a.CloseWrite()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("received %d bytes, differing from the %d reported written", len(got), sent.Len())
	}
}

// An idle socket gives its buffer back while the Reader waits; data, then the end of stream,
// then a closed socket's error come through.
func TestReaderHoldsNoBufferWhileIdle(t *testing.T) {
	a, b := pair(t)
	var held, puts int
	buf := make([]byte, 16)
	r := NewReader(b, func() []byte { held++; return buf }, func() { held--; puts++ })
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.Write([]byte("hello"))
		a.CloseWrite()
	}()
	n, err := r.Read()
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if puts == 0 || held != 1 {
		t.Fatalf("while idle the reader kept its buffer (puts %d, held %d)", puts, held)
	}
	held = 0
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("at end of stream Read = %v", err)
	}
	b.Close()
	if _, err := r.Read(); err == nil {
		t.Fatal("Read on a closed socket succeeded")
	}
}

// TryRead takes what the socket holds without waiting: nothing on an idle socket, the bytes
// once written, and the end of stream; it never calls get.
func TestTryRead(t *testing.T) {
	a, b := pair(t)
	r := NewReader(b, func() []byte { t.Fatal("TryRead took a buffer"); return nil }, func() {})
	buf := make([]byte, 16)
	start := time.Now()
	if n, err := r.TryRead(buf); n != 0 || err != nil {
		t.Fatalf("on an idle socket TryRead = %d, %v", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("TryRead waited %v", d)
	}
	a.Write([]byte("hello"))
	a.CloseWrite()
	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := r.TryRead(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("TryRead = %d, %v, having read %q", n, err, got)
		}
	}
	if string(got) != "hello" {
		t.Fatalf("TryRead read %q", got)
	}
}

// Check tells a reset apart from an open or half-closed connection without reading, also
// once a write has taken the reset's error and a read would return io.EOF.
func TestCheck(t *testing.T) {
	check := func(r *Reader, when string, wantClosed bool, wantErr error) {
		t.Helper()
		closed, err := r.Check()
		if closed != wantClosed || !errors.Is(err, wantErr) {
			t.Fatalf("%s: Check() = %v, %v, want %v, %v", when, closed, err, wantClosed, wantErr)
		}
	}
	eventually := func(r *Reader, when string, wantClosed bool) {
		t.Helper()
		for range 100 {
			if closed, _ := r.Check(); closed == wantClosed {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		check(r, when, wantClosed, nil)
	}
	nothing := func() []byte { return nil }

	a, b := pair(t)
	r := NewReader(b, nothing, func() {})
	check(r, "open", false, nil)
	if n := testing.AllocsPerRun(100, func() { r.Check() }); n != 0 {
		t.Fatalf("Check allocates %v times, want 0", n)
	}
	a.CloseWrite()
	time.Sleep(50 * time.Millisecond)
	check(r, "half-closed by the peer", false, nil)
	b.CloseWrite() // and by us: a clean close in both directions
	eventually(r, "closed cleanly", true)

	a, b = pair(t)
	r = NewReader(b, nothing, func() {})
	a.Write([]byte("unread"))
	a.SetLinger(0)
	a.Close()
	time.Sleep(50 * time.Millisecond)
	check(r, "reset", true, syscall.ECONNRESET)
	check(r, "reset, error taken", true, nil)

	// A write takes the reset's error; a read then returns the end of stream.
	a, b = pair(t)
	r = NewReader(b, func() []byte { return make([]byte, 16) }, func() {})
	a.SetLinger(0)
	a.Close()
	time.Sleep(50 * time.Millisecond)
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("write to a reset connection succeeded")
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after a write took the reset = %v, want io.EOF", err)
	}
	check(r, "reset, error taken by a write", true, nil)
}

func TestNotASocket(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if NewWriter(c1) != nil || NewReader(c1, nil, nil) != nil {
		t.Fatal("a pipe got a raw reader or writer")
	}
}

func BenchmarkTryWrite(b *testing.B) {
	c1, c2 := pair(b)
	go io.Copy(io.Discard, c2)
	w := NewWriter(c1)
	p := make([]byte, 1024)
	bufs := [][]byte{p}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		for n := 0; n == 0; {
			n, _ = w.TryWrite(bufs)
		}
	}
}
