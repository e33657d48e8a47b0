package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
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
