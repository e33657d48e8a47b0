package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// Addresses of the two topologies, inside 10.0.0.0/8. Nothing else is routed anywhere.
const (
	// direct: A (client) and B (server) joined by one veth pair.
	directA = "10.201.0.1"
	directB = "10.201.0.2"

	// relay: A and B each joined only to H, which does not forward; H answers at hubIP on
	// its loopback, routed from both sides.
	relayHubB = "10.202.1.1" // H's end towards B
	relayB    = "10.202.1.2"
	relayHubA = "10.202.2.1" // H's end towards A
	relayA    = "10.202.2.2"
	hubIP     = "10.202.0.1"

	// wireguard's tunnel addresses, on wg interfaces in direct A and B.
	wgA = "10.203.0.1"
	wgB = "10.203.0.2"

	// Nebula's overlay addresses, on its tun devices in direct A and B.
	nebulaA = "10.204.0.1"
	nebulaB = "10.204.0.2"
)

// Servers in B: on its loopback for every tunnel, and on all addresses for the modes that
// reach B's own addresses (raw TCP, wireguard and Nebula), which start those themselves.
const (
	iperfPort     = 5201
	blastPort     = 7000
	openIperfPort = 5202
	openBlastPort = 7002
)

// direct is the two-host topology.
type direct struct{ a, b *netns.Namespace }

// relay is the three-host topology.
type relay struct{ a, b, hub *netns.Namespace }

// buildTopologies builds both topologies. On error, what was built is removed.
func buildTopologies(ctx context.Context) (d direct, r relay, err error) {
	var made []*netns.Namespace
	defer func() {
		if err != nil {
			for _, ns := range made {
				ns.Close()
			}
		}
	}()
	create := func(prefix string) *netns.Namespace {
		if err != nil {
			return nil
		}
		var ns *netns.Namespace
		ns, err = netns.Create(prefix)
		if ns != nil {
			made = append(made, ns)
		}
		return ns
	}
	// Names carry this process's id, so a later run can tell what a killed run left behind.
	p := fmt.Sprintf("%s%d-", nsPrefix, os.Getpid())
	d.a, d.b = create(p+"a"), create(p+"b")
	r.a, r.b, r.hub = create(p+"ra"), create(p+"rb"), create(p+"h")
	if err != nil {
		return d, r, err
	}
	steps := []func() error{
		func() error { return netns.Connect(d.a, directA+"/24", d.b, directB+"/24") },
		func() error { return netns.Connect(r.hub, relayHubB+"/24", r.b, relayB+"/24") },
		func() error { return netns.Connect(r.hub, relayHubA+"/24", r.a, relayA+"/24") },
		func() error { return nsRun(ctx, r.hub, "ip", "addr", "add", hubIP+"/32", "dev", "lo") },
		func() error { return nsRun(ctx, r.hub, "sysctl", "-qw", "net.ipv4.ip_forward=0") },
		// The packet-mode outlet's flow ports are those above the ephemeral range: 14,535 of
		// them, room for the 10,000 idle flows of the scale measure.
		func() error { return nsRun(ctx, d.b, "sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 51000") },
		// The clients in A take ports of their own connections in TIME_WAIT for new ones, as
		// they do toward loopback by default: otherwise every connect searches the ephemeral
		// range past thousands of them, and the client's kernel, whatever carries the
		// connections, caps plain TCP at about 5,700 connects/s on a 2-core machine (14,400
		// with reuse). The same for every mode.
		func() error { return nsRun(ctx, d.a, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1") },
		func() error { return nsRun(ctx, r.b, "ip", "route", "add", hubIP+"/32", "via", relayHubB) },
		func() error { return nsRun(ctx, r.a, "ip", "route", "add", hubIP+"/32", "via", relayHubA) },
	}
	for _, step := range steps {
		if err = step(); err != nil {
			return d, r, fmt.Errorf("topology: %w", err)
		}
	}
	// The relay shape is only honest if A cannot reach B except through H's services.
	if _, cerr := r.a.Exec(ctx, "ip", "route", "get", relayB); cerr == nil {
		err = errors.New("topology: A has a route to B in the relay topology")
	}
	return d, r, err
}

// nsPrefix starts the names of the namespaces a run makes: adjbench-PID-ROLE-RANDOM.
const nsPrefix = "adjbench-"

// sweep removes namespaces that an earlier run, since killed without its cleanup, left
// behind: those whose creating process no longer runs.
func sweep(ctx context.Context) {
	out, err := runCmd(ctx, "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pid, _, _ := strings.Cut(strings.TrimPrefix(f[0], nsPrefix), "-")
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its run is still going
		}
		progress("removing namespace %s, left behind by an earlier run", f[0])
		(&netns.Namespace{Name: f[0]}).Close()
	}
}

func nsRun(ctx context.Context, ns *netns.Namespace, args ...string) error {
	_, err := ns.Exec(ctx, args...)
	return err
}
