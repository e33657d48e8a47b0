//go:build linux && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package rstguard

import (
	"bufio"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/rawsock"
	"github.com/adjacentnet/adjacent/dataplane/packet/sockfilter"
	"github.com/adjacentnet/adjacent/internal/netns"
)

const first, last = 40000, 40999

// segment builds a TCP segment from src to dst with complete checksums.
func segment(src, dst netip.AddrPort, flags header.TCPFlags) []byte {
	ihl := header.IPv4MinimumSize
	if src.Addr().Is6() {
		ihl = header.IPv6MinimumSize
	}
	b := make([]byte, ihl+header.TCPMinimumSize)
	if src.Addr().Is6() {
		b[0], b[5], b[6], b[7] = 0x60, header.TCPMinimumSize, 6, 64
		copy(b[8:], src.Addr().AsSlice())
		copy(b[24:], dst.Addr().AsSlice())
	} else {
		b[0], b[3], b[8], b[9] = 0x45, byte(len(b)), 64, 6
		copy(b[12:], src.Addr().AsSlice())
		copy(b[16:], dst.Addr().AsSlice())
	}
	header.TCP(b[ihl:]).Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 5000, AckNum: 1001,
		DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
	p, err := packet.Parse(b)
	if err != nil {
		panic(err)
	}
	p.SetChecksums()
	return b
}

// rig is an injector and a capturer of RSTs from one flow port, in a namespace.
type rig struct {
	ns      *netns.NS
	in      *rawsock.Injector
	markIn  *rawsock.Injector // its packets carry the guard's mark
	capture map[string]*rawsock.Capturer
}

const mark = 0x4a7

func newRig(t *testing.T) *rig {
	netns.Require(t)
	r := &rig{ns: netns.New(t, "rstguard"), capture: map[string]*rawsock.Capturer{}}
	err := netns.Do(r.ns.Name, func() error {
		var err error
		if r.in, err = rawsock.NewInjector(rawsock.InjectorConfig{}); err != nil {
			return err
		}
		if r.markIn, err = rawsock.NewInjector(rawsock.InjectorConfig{Mark: mark}); err != nil {
			return err
		}
		for _, host := range []string{"127.0.0.1", "::1"} {
			// RSTs from the flow port 40001 to the peer port 5555.
			f, err := sockfilter.Assemble(sockfilter.Match{Src: netip.AddrPortFrom(netip.MustParseAddr(host), 40001), First: 5555, Last: 5555})
			if err != nil {
				return err
			}
			if r.capture[host], err = rawsock.NewCapturer(rawsock.CaptureConfig{Filter: f}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.in.Close()
		r.markIn.Close()
		for _, c := range r.capture {
			c.Close()
		}
	})
	return r
}

// rsts injects segments from peer port 5555 to flow port 40001 on host (no socket holds it)
// with in, or the other way round if fromFlow, and returns how many RSTs from 40001 the
// capturer saw within a short while.
func (r *rig) rsts(t *testing.T, in *rawsock.Injector, host string, fromFlow bool, flags ...header.TCPFlags) int {
	t.Helper()
	peer, flow := netip.AddrPortFrom(netip.MustParseAddr(host), 5555), netip.AddrPortFrom(netip.MustParseAddr(host), 40001)
	if fromFlow {
		peer, flow = flow, peer
	}
	for _, f := range flags {
		if _, err := in.Write([][]byte{segment(peer, flow, f)}, 0); err != nil {
			if fromFlow && errors.Is(err, unix.EPERM) {
				continue // an output rule dropped it: the sender learns, the wire sees nothing
			}
			t.Fatalf("inject %v: %v", f, err)
		}
	}
	c := r.capture[host]
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	bufs, infos := [][]byte{make([]byte, 256)}, make([]rawsock.Info, 1)
	n := 0
	for {
		got, err := c.Read(bufs, infos, 0)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if p, err := packet.Parse(bufs[0][:infos[0].Size]); err == nil && p.Flags()&header.TCPFlagRst != 0 {
			n += got
		}
	}
}

// kernelRST is what makes the kernel answer: a SYN-ACK and an ACK to a port with no socket.
var kernelRST = []header.TCPFlags{header.TCPFlagSyn | header.TCPFlagAck, header.TCPFlagAck}

// TestGuard: without the rules the kernel answers a flow port's SYN-ACK and ACK with RSTs;
// with them it does not, the flows' packets are counted, a RST from the range leaves only
// with the mark; after Close the kernel answers again.
func TestGuard(t *testing.T) {
	r := newRig(t)
	for _, host := range []string{"127.0.0.1", "::1"} {
		if n := r.rsts(t, r.in, host, false, kernelRST...); n != 2 {
			t.Fatalf("%s without the rules: %d RSTs, want 2 (the test cannot see the kernel's RSTs)", host, n)
		}
	}
	var g *Guard
	if err := netns.Do(r.ns.Name, func() (err error) {
		g, err = Install(Config{First: first, Last: last, Mark: mark})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, host := range []string{"127.0.0.1", "::1"} {
		if n := r.rsts(t, r.in, host, false, kernelRST...); n != 0 {
			t.Errorf("%s with the rules: %d RSTs, want 0", host, n)
		}
		if n := r.rsts(t, r.markIn, host, true, header.TCPFlagRst); n != 1 {
			t.Errorf("%s: a RST from the range with the mark: captured %d, want 1", host, n)
		}
		if n := r.rsts(t, r.in, host, true, header.TCPFlagRst|header.TCPFlagAck); n != 0 {
			t.Errorf("%s: a RST from the range without the mark: captured %d, want 0", host, n)
		}
	}
	c, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	// Per family: SYN-ACK and ACK kept from the kernel; one unmarked RST from the range.
	if want := (Counters{Diverted: 4, RSTs: 2}); c != want {
		t.Errorf("Counters() = %+v, want %+v", c, want)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if names := tables(t, r.ns); slices.Contains(names, "adjacent-raw-40000-40999") {
		t.Errorf("after Close: tables %v still hold the guard's", names)
	}
	if n := r.rsts(t, r.in, "127.0.0.1", false, kernelRST...); n != 2 {
		t.Errorf("after Close: %d RSTs, want 2", n)
	}
}

func tables(t *testing.T, ns *netns.NS) []string {
	t.Helper()
	var names []string
	if err := netns.Do(ns.Name, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		for _, tb := range ts {
			names = append(names, tb.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestGuardGoesWithProcess installs the rules in a child process, kills it, and finds the
// table gone: a node that dies leaves no rules behind.
func TestGuardGoesWithProcess(t *testing.T) {
	if os.Getenv("RSTGUARD_CHILD") == "1" {
		if _, err := Install(Config{First: first, Last: last, Table: "adjacent-raw-child"}); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("installed\n")
		time.Sleep(time.Minute) // until killed
		return
	}
	netns.Require(t)
	ns := netns.New(t, "rstguard")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.CommandContext(t.Context(), exe, "-test.run=^TestGuardGoesWithProcess$")
	cmd.Env = append(os.Environ(), "RSTGUARD_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "installed" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if names := tables(t, ns); !slices.Contains(names, "adjacent-raw-child") {
		t.Fatalf("child installed, tables %v: want adjacent-raw-child", names)
	}
	// ip netns exec runs the test binary in its place, so this kills the owner itself.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for range 50 { // the kernel releases the socket's table as the process's files close
		if names := tables(t, ns); !slices.Contains(names, "adjacent-raw-child") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("tables %v still hold adjacent-raw-child after its owner died", tables(t, ns))
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{{}, {First: 5, Last: 4}, {First: 0, Last: 4}} {
		if err := c.check(); err == nil {
			t.Errorf("check(%+v) = nil, want an error", c)
		}
	}
}
