//go:build linux && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package rstguard

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/rawsock"
	"github.com/adjacentnet/adjacent/internal/netns"
)

// What an outlet injects onto loopback skips the output hooks, where its packets from the
// flow ports are exempted from connection tracking: the guard exempts those that carry its
// mark as they come in, so conntrack holds no entry per flow; an unmarked one is tracked
// (which shows that conntrack runs in the namespace), for IPv4 and IPv6.
func TestMarkedLoopbackInjectionIsNotTracked(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t, "notrack")
	var ln4, ln6 net.Listener
	var marked, unmarked *rawsock.LinkInjector
	var g *Guard
	err := netns.Do(ns.Name, func() error {
		// The listeners' ports must lie outside the flow ports, as a node's range must lie
		// outside the kernel's: the guard drops what comes in to those.
		err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("50000 60000"), 0o644)
		if err != nil {
			return err
		}
		if err = trackConnections(); err != nil {
			return err
		}
		if ln4, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		if ln6, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			return err
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		if marked, err = rawsock.NewLinkInjector(lo.Index, mark); err != nil {
			return err
		}
		if unmarked, err = rawsock.NewLinkInjector(lo.Index, 0); err != nil {
			return err
		}
		g, err = Install(Config{First: first, Last: last, Mark: mark})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	defer ln6.Close()
	defer marked.Close()
	defer unmarked.Close()
	defer g.Close()
	// The marked SYN goes first, then the unmarked one. The kernel may take an injected
	// packet after the write returns (from another CPU's backlog), so the table is read
	// once both listeners hold a half-open connection from each port: then both SYNs went
	// through the hooks.
	for _, ln := range []net.Listener{ln4, ln6} {
		target := ln.Addr().(*net.TCPAddr).AddrPort()
		for _, f := range []struct {
			port uint16
			in   *rawsock.LinkInjector
		}{{40001, marked}, {40002, unmarked}} {
			p, _ := packet.Parse(segment(netip.AddrPortFrom(target.Addr(), f.port), target, header.TCPFlagSyn))
			if err := f.in.Write(&p, packet.Offload{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(name string) string {
		var b []byte
		netns.Do(ns.Name, func() (err error) {
			b, err = os.ReadFile("/proc/thread-self/net/" + name)
			return err
		})
		return string(b)
	}
	const synRecv = "03" // /proc/net/tcp's state of a half-open connection
	halfOpen := func() bool {
		n := 0
		for _, name := range []string{"tcp", "tcp6"} {
			for _, l := range strings.Split(read(name), "\n") {
				if f := strings.Fields(l); len(f) > 3 && f[3] == synRecv &&
					(strings.HasSuffix(f[2], ":9C41") || strings.HasSuffix(f[2], ":9C42")) {
					n++
				}
			}
		}
		return n == 4
	}
	for deadline := time.Now().Add(5 * time.Second); !halfOpen(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the listeners hold no half-open connection from each port after 5 s:\n%s%s", read("tcp"), read("tcp6"))
		}
	}
	table := read("nf_conntrack")
	for _, ln := range []net.Listener{ln4, ln6} {
		host := ln.Addr().(*net.TCPAddr).AddrPort().Addr()
		tracked := func(port string) bool {
			for _, l := range strings.Split(table, "\n") {
				if strings.Contains(l, "src="+host.StringExpanded()+" ") && strings.Contains(l, "sport="+port+" ") {
					return true
				}
			}
			return false
		}
		if !tracked("40002") {
			t.Fatalf("%s: the unmarked SYN is not tracked either: conntrack does not run here\n%s", host, table)
		}
		if tracked("40001") {
			t.Errorf("%s: the marked SYN from a flow port is tracked\n%s", host, table)
		}
	}
}

// trackConnections makes the namespace track connections: a table whose chain reads the
// connection state, as a host's firewall would.
func trackConnections() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Name: "tracked", Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Hooknum: nftables.ChainHookInput,
		Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Counter{},
	}})
	return c.Flush()
}
