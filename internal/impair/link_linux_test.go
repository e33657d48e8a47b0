package impair

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// The integration tests build two namespaces, A (10.9.0.1, fd09::1) and B (10.9.0.2,
// fd09::2), joined by an impaired link, and probe it with UDP echoes and TCP transfers made
// by this process in the namespaces. They need root and skip without it.

const (
	addrsA = "10.9.0.1/24,fd09::1/64"
	addrsB = "10.9.0.2/24,fd09::2/64"
)

var (
	echoV4 = netip.MustParseAddrPort("10.9.0.2:7")
	echoV6 = netip.MustParseAddrPort("[fd09::2]:7")
)

func setup(t *testing.T, ab, ba Impairment) (*Link, *netns.NS, *netns.NS) {
	t.Helper()
	netns.Require(t)
	a, b := netns.New(t, "impa"), netns.New(t, "impb")
	return Join(t, a, addrsA, b, addrsB, ab, ba), a, b
}

// echo answers every UDP datagram sent to addr in ns with itself, until the test ends.
func echo(t *testing.T, ns *netns.NS, addr netip.AddrPort) {
	t.Helper()
	var pc net.PacketConn
	err := netns.Do(ns.Name, func() (err error) {
		pc, err = net.ListenPacket("udp", addr.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

type probes struct {
	rtt        []time.Duration // by probe; 0 when no answer came
	lost       int             // probes without an answer
	dups       int             // answers beyond the first for a probe
	outOfOrder int             // answers for a probe sent before one already answered
}

func (p probes) median() time.Duration {
	var got []time.Duration
	for _, r := range p.rtt {
		if r > 0 {
			got = append(got, r)
		}
	}
	if len(got) == 0 {
		return 0
	}
	slices.Sort(got)
	return got[len(got)/2]
}

// probe sends count UDP probes from ns to the echo server at to, one per interval, and
// collects answers until wait after the last.
func probe(t *testing.T, ns *netns.NS, to netip.AddrPort, count int, interval, wait time.Duration) probes {
	t.Helper()
	var c net.Conn
	if err := netns.Do(ns.Name, func() (err error) {
		c, err = net.Dial("udp", to.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sent := make(chan struct{}) // closed after the last probe
	go func() {
		defer close(sent)
		var msg [12]byte
		for i := range count {
			binary.BigEndian.PutUint32(msg[:], uint32(i))
			binary.BigEndian.PutUint64(msg[4:], uint64(time.Since(start)))
			if _, err := c.Write(msg[:]); err != nil {
				return
			}
			time.Sleep(interval)
		}
	}()
	res := probes{rtt: make([]time.Duration, count)}
	highest := -1
	buf := make([]byte, 64)
	var end time.Time // wait after the last probe went; sleeps overrun on a busy machine
	for end.IsZero() || time.Now().Before(end) {
		if end.IsZero() {
			select {
			case <-sent:
				end = time.Now().Add(wait)
			default:
			}
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := c.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatalf("read answers: %v", err)
		}
		if n != 12 {
			t.Fatalf("echo of %d bytes, want 12", n)
		}
		id := int(binary.BigEndian.Uint32(buf))
		rtt := time.Since(start) - time.Duration(binary.BigEndian.Uint64(buf[4:]))
		switch {
		case res.rtt[id] > 0:
			res.dups++
			continue
		case id < highest:
			res.outOfOrder++
		default:
			highest = id
		}
		res.rtt[id] = rtt
	}
	for _, r := range res.rtt {
		if r == 0 {
			res.lost++
		}
	}
	return res
}

// TestDelay: 50 ms ± 10 ms each way gives round trips of 80 to 120 ms, over IPv4 and IPv6.
// Without the delay line they take well under a millisecond.
func TestDelay(t *testing.T) {
	imp := Impairment{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}
	l, a, b := setup(t, imp, imp)
	for _, to := range []netip.AddrPort{echoV4, echoV6} {
		echo(t, b, to)
		p := probe(t, a, to, 40, 20*time.Millisecond, time.Second)
		if p.lost > 0 {
			t.Errorf("%s: %d of 40 probes lost on a link without loss", to, p.lost)
		}
		lo := slices.Min(slices.DeleteFunc(slices.Clone(p.rtt), func(d time.Duration) bool { return d == 0 }))
		med := p.median()
		t.Logf("%s: round trips min %v median %v", to, lo, med)
		if lo < 80*time.Millisecond {
			t.Errorf("%s: shortest round trip %v, want >= 80ms (2 x (50ms - 10ms))", to, lo)
		}
		if med < 90*time.Millisecond || med >= 400*time.Millisecond {
			t.Errorf("%s: median round trip %v, want 90ms..400ms", to, med)
		}
	}
	ab, ba := l.Stats()
	for _, s := range []Stats{ab, ba} {
		if s.Delayed < 80 || s.Passed < 80 || s.Dropped != 0 {
			t.Errorf("stats %+v, want >= 80 delayed and passed, none dropped", s)
		}
	}
}

// TestLoss: 30% loss from A to B loses 15% to 45% of 200 probes (binomial: 60 ± 6.5);
// none is lost without loss.
func TestLoss(t *testing.T) {
	for _, tc := range []struct {
		loss     float64
		min, max int
	}{
		{0, 0, 0},
		{0.3, 30, 90},
	} {
		t.Run(fmt.Sprintf("loss=%g%%", tc.loss*100), func(t *testing.T) {
			l, a, b := setup(t, Impairment{Loss: tc.loss}, Impairment{})
			echo(t, b, echoV4)
			p := probe(t, a, echoV4, 200, 5*time.Millisecond, 500*time.Millisecond)
			ab, _ := l.Stats()
			t.Logf("lost %d of 200; A to B %+v", p.lost, ab)
			if p.lost < tc.min || p.lost > tc.max {
				t.Errorf("lost %d of 200 probes, want %d..%d", p.lost, tc.min, tc.max)
			}
			if ab.Lost < uint64(p.lost) || ab.Received < 200 {
				t.Errorf("A to B counted %d lost of %d, want >= %d of >= 200", ab.Lost, ab.Received, p.lost)
			}
		})
	}
}

// TestDuplicate: with 50% duplication from A to B, about half the probes are answered twice.
func TestDuplicate(t *testing.T) {
	l, a, b := setup(t, Impairment{Duplicate: 0.5}, Impairment{})
	echo(t, b, echoV4)
	p := probe(t, a, echoV4, 100, 5*time.Millisecond, 500*time.Millisecond)
	ab, _ := l.Stats()
	t.Logf("%d duplicate answers to 100 probes; A to B %+v", p.dups, ab)
	if p.lost > 0 || p.dups < 20 || p.dups > 80 {
		t.Errorf("%d lost, %d duplicate answers to 100 probes, want none lost, 20..80 duplicates", p.lost, p.dups)
	}
	if ab.Duplicated < uint64(p.dups) || ab.Passed != ab.Received+ab.Duplicated {
		t.Errorf("A to B %+v, want >= %d duplicated and passed = received + duplicated", ab, p.dups)
	}
}

// TestReorder: probes 2 ms apart arrive out of order when some are held back 20 ms more than
// the 20 ms delay, and when
// the jitter (±10 ms) is wider than their spacing.
func TestReorder(t *testing.T) {
	for name, imp := range map[string]Impairment{
		"held":   {Delay: 20 * time.Millisecond, Reorder: 0.25},
		"jitter": {Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			l, a, b := setup(t, imp, Impairment{})
			echo(t, b, echoV4)
			p := probe(t, a, echoV4, 100, 2*time.Millisecond, 500*time.Millisecond)
			ab, _ := l.Stats()
			t.Logf("%d of 100 answers out of order; A to B %+v", p.outOfOrder, ab)
			if p.lost > 0 || p.outOfOrder == 0 || ab.Reordered == 0 {
				t.Errorf("%d lost, %d out of order, %d counted reordered; want none lost, some reordered", p.lost, p.outOfOrder, ab.Reordered)
			}
		})
	}
}

// inNS runs f in ns and fails the test on its error.
func inNS(t *testing.T, ns *netns.NS, f func() error) {
	t.Helper()
	if err := netns.Do(ns.Name, f); err != nil {
		t.Fatal(err)
	}
}

// TestTCPExact: 4 MiB echoed over a link with 1% loss, 1% duplication, 1% reordering and
// 5 ms ± 3 ms each way arrives byte-exact, and each impairment happened.
func TestTCPExact(t *testing.T) {
	imp := Impairment{Delay: 5 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01}
	l, a, b := setup(t, imp, imp)
	var ln net.Listener
	inNS(t, b, func() (err error) { ln, err = net.Listen("tcp", "10.9.0.2:8000"); return err })
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	var c net.Conn
	inNS(t, a, func() (err error) { c, err = net.DialTimeout("tcp", "10.9.0.2:8000", 5*time.Second); return err })
	defer c.Close()
	c.SetDeadline(time.Now().Add(18 * time.Second))

	data := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the echo: %v after %d bytes", err, len(got))
	}
	if err := <-werr; err != nil {
		t.Fatalf("send: %v", err)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Fatalf("echo of %d bytes differs from the %d sent at byte %d", len(got), len(data), i)
	}
	ab, ba := l.Stats()
	t.Logf("4 MiB each way in %v (%.1f Mbit/s); A to B %+v; B to A %+v", elapsed, float64(len(data))*8/elapsed.Seconds()/1e6, ab, ba)
	for _, s := range []Stats{ab, ba} {
		if s.Lost == 0 || s.Duplicated == 0 || s.Reordered == 0 {
			t.Errorf("stats %+v: want some lost, duplicated and reordered", s)
		}
	}
}

// TestRate: 4 MiB from A to B at 20 Mbit/s takes at least 80% of the ideal 1.68 s; without
// the limit it takes a few tens of milliseconds.
func TestRate(t *testing.T) {
	const rate, size = 20_000_000, 4 << 20
	l, a, b := setup(t, Impairment{Rate: rate}, Impairment{})
	var ln net.Listener
	inNS(t, b, func() (err error) { ln, err = net.Listen("tcp", "10.9.0.2:8000"); return err })
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
		c.Close()
	}()
	var c net.Conn
	inNS(t, a, func() (err error) { c, err = net.DialTimeout("tcp", "10.9.0.2:8000", 5*time.Second); return err })
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	start := time.Now()
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil { // until B has read everything and closed
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if n := <-got; n != size {
		t.Fatalf("B read %d bytes, want %d", n, size)
	}
	ideal := time.Duration(float64(size*8) / rate * float64(time.Second))
	ab, _ := l.Stats()
	t.Logf("4 MiB at 20 Mbit/s in %v, ideal %v (%.2f of the rate); A to B %+v", elapsed, ideal, ideal.Seconds()/elapsed.Seconds(), ab)
	if elapsed < ideal*8/10 {
		t.Errorf("4 MiB took %v at 20 Mbit/s, want >= %v (80%% of the ideal %v)", elapsed, ideal*8/10, ideal)
	}
}

// TestClose: Close removes both devices, stops every goroutine of the link and is
// idempotent; closing a link whose namespace went first does not hang.
func TestClose(t *testing.T) {
	netns.Require(t)
	a, b := netns.New(t, "impa"), netns.New(t, "impb")
	l, err := New(Config{
		A: Endpoint{Netns: a.Name, Addrs: prefixes(t, addrsA)},
		B: Endpoint{Netns: b.Name, Addrs: prefixes(t, addrsB)},
	})
	if err != nil {
		t.Fatal(err)
	}
	da, db := l.Devices()
	if out := a.Run("ip", "-o", "link", "show"); !strings.Contains(out, da) {
		t.Fatalf("A's links %q lack the link's device %s", out, da)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range []struct {
		ns  *netns.NS
		dev string
	}{{a, da}, {b, db}} {
		if out := c.ns.Run("ip", "-o", "link", "show"); strings.Contains(out, c.dev) {
			t.Errorf("%s still has %s after Close: %q", c.ns, c.dev, out)
		}
	}
	leftover(t)

	// The namespace first, then the link.
	c := netns.New(t, "impc")
	l, err = New(Config{A: Endpoint{Netns: a.Name, Addrs: prefixes(t, addrsA)}, B: Endpoint{Netns: c.Name, Addrs: prefixes(t, addrsB)}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs after a namespace was removed")
	}
	leftover(t)
}

// leftover fails the test if a goroutine of a link is still running.
func leftover(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	if i := bytes.Index(buf, []byte("impair.(*direction)")); i >= 0 {
		t.Errorf("a link's goroutine runs after Close:\n%s", buf[max(0, i-500):min(len(buf), i+500)])
	}
}

// TestNewFails: a namespace that does not exist is refused with its name, and the device
// already made on the other side is removed.
func TestNewFails(t *testing.T) {
	netns.Require(t)
	a := netns.New(t, "impa")
	_, err := New(Config{
		A: Endpoint{Netns: a.Name, Addrs: prefixes(t, addrsA)},
		B: Endpoint{Netns: "impair-no-such-namespace"},
	})
	if err == nil || !strings.Contains(err.Error(), "impair-no-such-namespace") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New with a missing namespace: %v, want an error naming it", err)
	}
	if out := a.Run("ip", "-o", "link", "show"); strings.Contains(out, "impair") {
		t.Errorf("A keeps a device after New failed: %q", out)
	}
	_, err = New(Config{AtoB: Impairment{Loss: 1.5}})
	if err == nil || !strings.Contains(err.Error(), "loss 1.5 is not a probability") {
		t.Errorf("New with loss 1.5: %v, want a refusal", err)
	}
}

// BenchmarkTransfer moves 1 MiB per op over TCP from A to B through a veth pair and through
// an impaired link that impairs nothing; the ratio of the two is the cost of the userspace
// link.
//
//	go test -run '^$' -bench Transfer -benchtime 3s ./internal/impair/
func BenchmarkTransfer(b *testing.B) {
	for _, link := range []string{"veth", "impair"} {
		b.Run("link="+link, func(b *testing.B) {
			netns.Require(b)
			na, nb := netns.New(b, "impa"), netns.New(b, "impb")
			if link == "veth" {
				netns.Link(b, na, "10.9.0.1/24", nb, "10.9.0.2/24")
			} else {
				Join(b, na, "10.9.0.1/24", nb, "10.9.0.2/24", Impairment{}, Impairment{})
			}
			var ln net.Listener
			if err := netns.Do(nb.Name, func() (err error) { ln, err = net.Listen("tcp", "10.9.0.2:8000"); return err }); err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- n
			}()
			var c net.Conn
			if err := netns.Do(na.Name, func() (err error) { c, err = net.Dial("tcp", "10.9.0.2:8000"); return err }); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			var sent int64
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				sent += int64(len(buf))
			}
			c.Close()
			if n := <-got; n != sent {
				b.Fatalf("B read %d bytes, want %d", n, sent)
			}
		})
	}
}
