package stack_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/stack"
	"github.com/adjacentnet/adjacent/tun"
)

// echoSession echoes on the accepted connection itself: the stack alone, no far side.
type echoSession struct{}

func (echoSession) Attach(c net.Conn) { go func() { io.Copy(c, c); c.Close() }() }
func (echoSession) Abort()            {}

// TestInNetnsRTT reports the round trip of 64 bytes through the stack and the device
// (run by TestStackRTT; logged, not checked).
func TestInNetnsRTT(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs inside TestStackRTT's namespace")
	}
	run(t, "ip", "addr", "add", "10.78.9.9/32", "dev", "lo")
	dev, err := tun.Create(tun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.New(stack.Config{Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer func() { s.Close(); dev.Close(); s.Wait() }()
	ap := netip.MustParseAddrPort("10.78.0.1:80")
	s.Register(ap, func(ctx context.Context, f stack.Flow) (stack.Session, error) { return echoSession{}, nil })
	dev.AddRoute(ap.Addr())

	kernel, _ := net.Listen("tcp", "127.0.0.1:0")
	defer kernel.Close()
	go func() {
		for {
			c, err := kernel.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	for _, addr := range []string{kernel.Addr().String(), ap.String()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		var ds []time.Duration
		for range 3000 {
			start := time.Now()
			c.Write(buf)
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		c.Close()
		slices.Sort(ds)
		t.Logf("%s: RTT p50 %v p99 %v", addr, ds[len(ds)/2], ds[len(ds)*99/100])
	}
}

func TestStackRTT(t *testing.T) {
	if os.Getenv(childEnv) != "" || testing.Short() {
		t.Skip("in the child, or -short")
	}
	inNetns(t, "^TestInNetnsRTT$")
}
