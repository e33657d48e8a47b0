package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// The port adjacent nodes accept on: B's node in the direct mode, the hub's in the relay.
const adjacentPort = 4000

// node is one adjacent node: a home in the scratch directory, used from one namespace.
type node struct {
	b    *bench
	ns   *netns.Namespace
	home string
	name string
}

// newNode makes a fresh home; on close the node is stopped and its log kept with the others.
func newNode(b *bench, s *stage, ns *netns.Namespace, dir, name string) *node {
	n := &node{b: b, ns: ns, home: filepath.Join(dir, name), name: name}
	s.onClose(func() {
		if log, err := os.ReadFile(filepath.Join(n.home, "node.log")); err == nil {
			os.WriteFile(filepath.Join(s.logs, "node-"+name+".log"), log, 0o644)
		}
	})
	s.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.run(ctx, "node", "stop")
	})
	return n
}

// run runs the adjacent CLI on the node's home, in its namespace (where the daemon it starts
// runs too), and returns what it printed.
func (n *node) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := n.ns.Exec(ctx, append([]string{n.b.tools.adjacent, "--home", n.home}, args...)...)
	if err != nil {
		return out, fmt.Errorf("%s: adjacent %s: %w", n.name, strings.Join(args, " "), trimBinary(err, n.b.tools.adjacent))
	}
	return strings.TrimSpace(out), nil
}

// trimBinary shortens the binary's path in an error to its name.
func trimBinary(err error, bin string) error {
	return errors.New(strings.ReplaceAll(err.Error(), bin, "adjacent"))
}

// runAll runs commands in order on their nodes and stops at the first error.
func runAll(ctx context.Context, steps []step) error {
	for _, st := range steps {
		if _, err := st.n.run(ctx, st.args...); err != nil {
			return err
		}
	}
	return nil
}

type step struct {
	n    *node
	args []string
}

// outlets are the commands that open B's outlets, one per server, named after it.
func outlets(server *node) []step {
	return []step{
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(iperfPort), "--from", "iperf"}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(blastPort), "--from", "blast"}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(pgPort), "--from", "pg"}},
	}
}

// directRoute is the route from A's node straight to B's outlet.
func directRoute(outlet string) string {
	return fmt.Sprintf("/ip4/%s/tcp/%d/secure/api/service/%s", directB, adjacentPort, outlet)
}

// adjacentDirect is the direct portal: B's node listens on its veth address with an outlet
// per server; A's node has an inlet for each on its loopback, with routes straight to them,
// one secure channel, each inlet made with the extra tcp-inlet flags. Nodes outside any
// project admit any authenticated peer, so no enrollment is needed.
func adjacentDirect(extra ...string) func(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	return func(ctx context.Context, b *bench, s *stage) (endpoints, error) {
		dir, err := b.scratch("adjacent")
		if err != nil {
			return endpoints{}, err
		}
		server := newNode(b, s, b.direct.b, dir, "b")
		client := newNode(b, s, b.direct.a, dir, "a")
		li, lb, lp := localPorts("adjacent")
		steps := append([]step{{server, []string{"node", "create", "--listen", fmt.Sprintf("%s:%d", directB, adjacentPort)}}}, outlets(server)...)
		for _, in := range []struct {
			port   int
			outlet string
		}{{li, "iperf"}, {lb, "blast"}, {lp, "pg"}} {
			steps = append(steps, step{client, append([]string{"tcp-inlet", "create",
				"--from", fmt.Sprintf("127.0.0.1:%d", in.port), "--to", directRoute(in.outlet)}, extra...)})
		}
		if err := runAll(ctx, steps); err != nil {
			return endpoints{}, err
		}
		ep := local(b.direct.a, li, lb, lp)
		ep.inlet, ep.outlet = client, server
		return ep, nil
	}
}

// The virtual addresses of the transparent and packet modes' inlets in A: the clients
// connect to ADDR:5201, ADDR:7000 and ADDR:5432 as if B's servers were there. Each mode has
// its own, so that the thousands of connections one mode's connect rate leaves in TIME_WAIT
// in A's kernel do not slow the next mode's choice of ports toward the same address (the
// packet mode after the transparent one measured 1,418 new flows/s on one address, 4,721 alone).
const (
	tunAddr = "10.250.0.1"
	rawAddr = "10.250.0.2"
)

// adjacentTun is the direct portal with transparent inlets: A's node serves
// addr:iperfPort, addr:blastPort and addr:pgPort on its TUN device and carries them to B's
// outlets. Each inlet is made with --tun and the extra tcp-inlet flags (a raw inlet's
// "--raw").
func adjacentTun(addr string, extra ...string) func(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	return func(ctx context.Context, b *bench, s *stage) (endpoints, error) {
		dir, err := b.scratch("adjacent-tun")
		if err != nil {
			return endpoints{}, err
		}
		server := newNode(b, s, b.direct.b, dir, "b")
		client := newNode(b, s, b.direct.a, dir, "a")
		steps := append([]step{{server, []string{"node", "create", "--listen", fmt.Sprintf("%s:%d", directB, adjacentPort)}}}, outlets(server)...)
		for _, in := range []struct {
			port   int
			outlet string
		}{{iperfPort, "iperf"}, {blastPort, "blast"}, {pgPort, "pg"}} {
			steps = append(steps, step{client, append([]string{"tcp-inlet", "create",
				"--from", fmt.Sprintf("%s:%d", addr, in.port), "--to", directRoute(in.outlet), "--tun"}, extra...)})
		}
		if err := runAll(ctx, steps); err != nil {
			return endpoints{}, err
		}
		at := func(port int) string { return fmt.Sprintf("%s:%d", addr, port) }
		return endpoints{ns: b.direct.a, iperf: at(iperfPort), blast: at(blastPort), pg: at(pgPort), inlet: client, outlet: server}, nil
	}
}

// setupAdjacentHub is the story's shape: a hub in H with the project's authority and relay
// service; B enrolls, opens an outlet per server and a relay; A enrolls and opens an inlet
// for each via the relay. Two channel layers: each node's channel to the hub, and A's end-to-end channel to B.
func setupAdjacentHub(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("adjacent-hub")
	if err != nil {
		return endpoints{}, err
	}
	hub := newNode(b, s, b.relay.hub, dir, "hub")
	server := newNode(b, s, b.relay.b, dir, "b")
	client := newNode(b, s, b.relay.a, dir, "a")
	if _, err := hub.run(ctx, "project", "create", "bench", "--listen", fmt.Sprintf("0.0.0.0:%d", adjacentPort),
		"--public-address", fmt.Sprintf("%s:%d", hubIP, adjacentPort)); err != nil {
		return endpoints{}, err
	}
	serverTicket, err := hub.run(ctx, "project", "ticket", "--relay", "bench")
	if err != nil {
		return endpoints{}, err
	}
	clientTicket, err := hub.run(ctx, "project", "ticket")
	if err != nil {
		return endpoints{}, err
	}
	li, lb, lp := localPorts("adjacent-hub")
	steps := append([]step{{server, []string{"enroll", serverTicket}}}, outlets(server)...)
	steps = append(steps, []step{
		{server, []string{"relay", "create", "bench"}},
		{client, []string{"enroll", clientTicket}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", li), "--via", "bench", "--to", "iperf"}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", lb), "--via", "bench", "--to", "blast"}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", lp), "--via", "bench", "--to", "pg"}},
	}...)
	if err := runAll(ctx, steps); err != nil {
		return endpoints{}, err
	}
	return local(b.relay.a, li, lb, lp), nil
}
