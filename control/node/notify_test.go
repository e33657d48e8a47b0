package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/home"
)

// TestServiceNotify: with $NOTIFY_SOCKET and $WATCHDOG_USEC set as systemd sets them for
// Type=notify and WatchdogSec=, the node sends READY=1 once its API socket answers, then
// WATCHDOG=1 pings, and STOPPING=1 when it shuts down. A unixgram socket stands in for
// systemd, which is not PID 1 here.
func TestServiceNotify(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "400000") // pings every 200 ms
	t.Setenv("WATCHDOG_PID", "")

	h := home.Home{Dir: filepath.Join(dir, "home")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Home: h, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()

	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	ready := next()
	if !strings.HasPrefix(ready, "READY=1\n") {
		t.Fatalf("first notification = %q, want READY=1", ready)
	}
	if !Running(ctx, h) {
		t.Fatal("READY=1 came before the API socket answers")
	}
	for i := range 2 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("notification %d after READY = %q, want WATCHDOG=1", i+1, got)
		}
	}
	cancel()
	for {
		got := next()
		if got == "STOPPING=1" {
			break
		}
		if got != "WATCHDOG=1" {
			t.Fatalf("notification at shutdown = %q, want STOPPING=1", got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestNoNotifySocket: without $NOTIFY_SOCKET the node runs as before and sends nothing.
func TestNoNotifySocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	h := home.Home{Dir: filepath.Join(t.TempDir(), "home")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Home: h, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()
	deadline := time.Now().Add(30 * time.Second)
	for !Running(ctx, h) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not answer within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
