package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/stack"
	"github.com/adjacentnet/adjacent/tun"
)

// The stack's tests need a real TUN device and the kernel's TCP, in a namespace of their own:
// TestStack runs this test binary again inside one, where the tests below do their work.
const childEnv = "ADJACENT_STACK_TEST_NETNS"

func TestStack(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	inNetns(t, "^TestInNetns$")
}

// inNetns runs the tests matching pattern in this test binary inside a new namespace.
func inNetns(t *testing.T, pattern string) {
	netns.Require(t)
	ns := netns.New(t, "stk")
	cmd := ns.Command(os.Args[0], "-test.run="+pattern, "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("tests in the namespace: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestInNetns")) {
		t.Fatal("the tests in the namespace did not run")
	}
}

// pipeSession joins the client's connection to a kernel TCP connection the Handler made.
type pipeSession struct{ far net.Conn }

func (p pipeSession) Attach(c net.Conn) {
	go func() {
		io.Copy(p.far, c)
		p.far.(*net.TCPConn).CloseWrite()
	}()
	go func() {
		io.Copy(c, p.far)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
}

func (p pipeSession) Abort() { p.far.Close() }

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestInNetns(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs inside TestStack's namespace")
	}
	// Source addresses for the clients, as a host has on its interfaces.
	run(t, "ip", "addr", "add", "10.77.9.9/32", "dev", "lo")
	run(t, "ip", "addr", "add", "fd77::9/128", "dev", "lo")

	// The far side: an echo server on the kernel's loopback.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()

	dev, err := tun.Create(tun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.New(stack.Config{Device: dev, MaxPendingPerClient: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer func() {
		s.Close()
		dev.Close()
		s.Wait()
	}()

	var mu sync.Mutex
	var flows []stack.Flow
	toEcho := func(ctx context.Context, f stack.Flow) (stack.Session, error) {
		mu.Lock()
		flows = append(flows, f)
		mu.Unlock()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", echo.Addr().String())
		if err != nil {
			return nil, err
		}
		return pipeSession{far: c}, nil
	}
	refuse := func(ctx context.Context, f stack.Flow) (stack.Session, error) {
		return nil, errors.New("target down")
	}
	v4 := netip.MustParseAddrPort("10.77.0.1:80")
	v6 := netip.MustParseAddrPort("[fd77::1]:80")
	down := netip.MustParseAddrPort("10.77.0.1:81")
	for _, r := range []struct {
		ap netip.AddrPort
		h  stack.Handler
	}{{v4, toEcho}, {v6, toEcho}, {down, refuse}} {
		if err := s.Register(r.ap, r.h); err != nil {
			t.Fatal(err)
		}
		if err := dev.AddRoute(r.ap.Addr()); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("echo", func(t *testing.T) {
		for _, ap := range []netip.AddrPort{v4, v6} {
			c, err := net.DialTimeout("tcp", ap.String(), 5*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", ap, err)
			}
			// 8 MiB with a half-close: everything comes back, then a clean end.
			data := make([]byte, 8<<20)
			rand.Read(data)
			go func() {
				c.Write(data)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("%s: echoed %d bytes (err %v), want the %d sent", ap, len(got), err, len(data))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(flows) != 2 || flows[0].Target != v4 || flows[1].Target != v6 || !flows[0].Client.Addr().Is4() {
			t.Fatalf("flows = %v", flows)
		}
	})

	refused := func(t *testing.T, addr string) {
		t.Helper()
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("dial %s refused after %v, want at once", addr, d)
		}
	}
	t.Run("unregistered port refused", func(t *testing.T) { refused(t, "10.77.0.1:5432") })
	t.Run("handler error refused", func(t *testing.T) { refused(t, down.String()) })

	t.Run("reset", func(t *testing.T) {
		// A session whose far side aborts resets the client, not a clean end.
		rst := netip.MustParseAddrPort("10.77.0.1:82")
		s.Register(rst, func(ctx context.Context, f stack.Flow) (stack.Session, error) { return resetSession{}, nil })
		defer s.Unregister(rst)
		c, err := net.DialTimeout("tcp", rst.String(), 5*time.Second)
		if err == nil { // else the reset came before connect returned: as good
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read = %v, want connection reset", err)
		}
	})

	t.Run("TryWrite", func(t *testing.T) {
		// Writes that do not wait: a large one takes what fits, and the rest after a read.
		ap := netip.MustParseAddrPort("10.77.0.1:83")
		data := make([]byte, 32<<20)
		rand.Read(data)
		s.Register(ap, func(ctx context.Context, f stack.Flow) (stack.Session, error) { return tryWriteSession{data}, nil })
		defer s.Unregister(ap)
		c, err := net.DialTimeout("tcp", ap.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v; want the %d written", len(got), err, len(data))
		}
	})

	t.Run("unregister and routes", func(t *testing.T) {
		s.Unregister(down)
		if err := dev.RemoveRoute(down.Addr()); err != nil { // v4 still holds the address
			t.Fatal(err)
		}
		if !strings.Contains(run(t, "ip", "route", "show", "dev", dev.Name()), "10.77.0.1") {
			t.Fatal("route of 10.77.0.1 went while another port uses it")
		}
		dev.RemoveRoute(v4.Addr())
		dev.RemoveRoute(v6.Addr())
		if out := run(t, "ip", "-4", "route", "show", "dev", dev.Name()) + run(t, "ip", "-6", "route", "show", "dev", dev.Name()); strings.Contains(out, "10.77.0.1") || strings.Contains(out, "fd77::1") {
			t.Fatalf("routes left after RemoveRoute:\n%s", out)
		}
		name := dev.Name()
		dev.Close()
		if out, err := exec.Command("ip", "link", "show", name).CombinedOutput(); err == nil {
			t.Fatalf("device %s still there after Close:\n%s", name, out)
		}
	})
}

// tryWriteSession writes data with TryWrite only, polling while the send buffer is full,
// then closes.
type tryWriteSession struct{ data []byte }

func (w tryWriteSession) Attach(c net.Conn) {
	go func() {
		defer c.Close()
		tw := c.(interface{ TryWrite([][]byte) (int, error) })
		rest := w.data
		for len(rest) > 0 {
			n, err := tw.TryWrite([][]byte{rest[:min(len(rest), 1<<20)], rest[min(len(rest), 1<<20):min(len(rest), 3<<20)]})
			if err != nil {
				return
			}
			rest = rest[n:]
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
}
func (tryWriteSession) Abort() {}

type resetSession struct{}

func (resetSession) Attach(c net.Conn) {
	c.(interface{ SetLinger(int) error }).SetLinger(0)
	c.Close()
}
func (resetSession) Abort() {}
