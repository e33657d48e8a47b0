package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"time"

	"github.com/adjacentnet/adjacent/internal/connprobe"
)

// Modes a client announces in its first byte.
const (
	modeExchange  = 'x'
	modeUpload    = 'u'
	modeDownload  = 'd'
	modeHalfClose = 'h'
	modeRR        = 'r'
)

const (
	halfCloseUp   = 8 << 20
	halfCloseDown = 1 << 20
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: blast serve|exchange|upload|download|halfclose|rr|connect|rate|idle [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:7000", "serve: address to listen on")
	to := fs.String("to", "127.0.0.1:7000", "address to connect to")
	n := fs.Int64("bytes", 1<<30, "bytes to move")
	count := fs.Int("count", 1000, "round trips or connects")
	size := fs.Int("size", 64, "request and response size of rr")
	parallel := fs.Int("parallel", 32, "rate: concurrent clients")
	seconds := fs.Float64("seconds", 3, "rate: how long")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(*listen)
	case "exchange":
		err = exchange(*to, *n)
	case "upload", "download":
		err = oneWay(*to, os.Args[1] == "upload", *n)
	case "halfclose":
		err = halfClose(*to)
	case "rr":
		err = roundTrips(*to, *count, *size)
	case "connect":
		err = connects(*to, *count)
	case "rate":
		err = connectRate(*to, *parallel, time.Duration(*seconds*float64(time.Second)))
	case "idle":
		err = idle(*to, *count)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "blast:", err)
	os.Exit(1)
}

// stream is a role's deterministic byte stream.
type stream struct{ r *rand.ChaCha8 }

func newStream(role string) *stream {
	var seed [32]byte
	copy(seed[:], role)
	return &stream{rand.NewChaCha8(seed)}
}

func (s *stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// send writes n bytes of role's stream.
func send(w io.Writer, role string, n int64) error {
	_, err := io.CopyBuffer(w, io.LimitReader(newStream(role), n), make([]byte, 256<<10))
	return err
}

// verify reads exactly n bytes of role's stream from r, then expects the end of stream.
func verify(r io.Reader, role string, n int64) error {
	want := newStream(role)
	got, exp := make([]byte, 256<<10), make([]byte, 256<<10)
	var seen int64
	for seen < n {
		k, err := r.Read(got[:min(int64(len(got)), n-seen)])
		if k > 0 {
			want.Read(exp[:k])
			if !bytes.Equal(got[:k], exp[:k]) {
				return fmt.Errorf("byte %d and after differ from what was sent", seen)
			}
			seen += int64(k)
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", seen, n, err)
		}
	}
	if k, err := r.Read(got[:1]); k != 0 || err != io.EOF {
		return fmt.Errorf("after all %d bytes: want end of stream, got %d more bytes, %v", n, k, err)
	}
	return nil
}

func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c.(*net.TCPConn))
	}
}

func handle(c *net.TCPConn) {
	defer c.Close()
	c.SetNoDelay(true)
	var hdr [9]byte // mode, then a byte count
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	n := int64(binary.BigEndian.Uint64(hdr[1:]))
	switch hdr[0] {
	case modeExchange:
		done := make(chan error, 1)
		go func() { done <- verify(c, "client", n) }()
		send(c, "server", n)
		c.CloseWrite()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "blast serve:", err)
		}
	case modeUpload:
		io.Copy(io.Discard, c)
		c.Write([]byte{1}) // tells the client everything arrived
	case modeDownload:
		send(c, "server", n)
	case modeHalfClose:
		k, _ := io.Copy(io.Discard, c)
		if k == halfCloseUp { // answer only after the end of stream
			send(c, "server", halfCloseDown)
		}
	case modeRR:
		buf := make([]byte, n)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}

func dial(addr string, mode byte, n int64) (*net.TCPConn, error) {
	c, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(header(mode, n)); err != nil {
		c.Close()
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// dialTCP connects with Nagle off, as every client here writes small messages.
func dialTCP(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.(*net.TCPConn).SetNoDelay(true)
	return c, nil
}

// header is what a client sends first: its mode, then a byte count.
func header(mode byte, n int64) []byte {
	hdr := make([]byte, 9)
	hdr[0] = mode
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	return hdr
}

// firstRoundTrip is one connect plus first round trip of size bytes, as connprobe defines
// it (the header and the request in one write, the close left to the caller).
func firstRoundTrip(addr string, size int) (time.Duration, net.Conn, error) {
	req := append(header(modeRR, int64(size)), make([]byte, size)...)
	return connprobe.FirstRoundTrip(func() (net.Conn, error) { return dialTCP(addr) }, req, make([]byte, size))
}

func exchange(addr string, n int64) error {
	c, err := dial(addr, modeExchange, n)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- verify(c, "server", n) }()
	if err := send(c, "client", n); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	c.CloseWrite()
	if err := <-done; err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	fmt.Printf("ok exchange bytes=%d seconds=%.3f\n", n, time.Since(start).Seconds())
	return nil
}

func oneWay(addr string, up bool, n int64) error {
	mode := byte(modeDownload)
	if up {
		mode = modeUpload
	}
	c, err := dial(addr, mode, n)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	if up {
		if err := send(c, "client", n); err != nil {
			return err
		}
		c.CloseWrite()
		var ack [1]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			return fmt.Errorf("no acknowledgement: %w", err)
		}
	} else if err := verify(c, "server", n); err != nil {
		return err
	}
	s := time.Since(start).Seconds()
	fmt.Printf("ok %s bytes=%d seconds=%.3f gbps=%.3f\n", map[bool]string{true: "upload", false: "download"}[up], n, s, float64(n)*8/s/1e9)
	return nil
}

func halfClose(addr string) error {
	c, err := dial(addr, modeHalfClose, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := send(c, "client", halfCloseUp); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	if err := verify(c, "server", halfCloseDown); err != nil {
		return err
	}
	fmt.Println("ok halfclose")
	return nil
}

func roundTrips(addr string, count, size int) error {
	c, err := dial(addr, modeRR, int64(size))
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, size)
	times := make([]time.Duration, 0, count)
	for i := 0; i < count+count/10; i++ { // the first tenth warms up
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if i >= count/10 {
			times = append(times, time.Since(start))
		}
	}
	p50, p99 := percentiles(times)
	fmt.Printf("ok rr count=%d size=%d p50_us=%.1f p99_us=%.1f\n", count, size, us(p50), us(p99))
	return nil
}

// connects times count connects plus first round trips of 64 bytes, one after another,
// as connprobe defines them: each close comes after its clock stopped.
func connects(addr string, count int) error {
	times := make([]time.Duration, 0, count)
	for i := 0; i < count; i++ {
		d, c, err := firstRoundTrip(addr, 64)
		if err != nil {
			return err
		}
		times = append(times, d)
		c.Close()
	}
	p50, p99 := percentiles(times)
	fmt.Printf("ok connect count=%d p50_us=%.1f p99_us=%.1f\n", count, us(p50), us(p99))
	return nil
}

func percentiles(ts []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(ts)
	return ts[len(ts)/2], ts[len(ts)*99/100]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
