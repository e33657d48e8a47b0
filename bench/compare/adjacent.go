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

// setupAdjacentDirect is the direct portal: B's node listens on its veth address with two
// outlets; A's node has two inlets with routes straight to them, one secure channel. Nodes
// outside any project admit any authenticated peer, so no enrollment is needed.
func setupAdjacentDirect(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("adjacent")
	if err != nil {
		return endpoints{}, err
	}
	server := newNode(b, s, b.direct.b, dir, "b")
	client := newNode(b, s, b.direct.a, dir, "a")
	li, lb := localPorts("adjacent")
	to := func(outlet string) string {
		return fmt.Sprintf("/ip4/%s/tcp/%d/secure/api/service/%s", directB, adjacentPort, outlet)
	}
	err = runAll(ctx, []step{
		{server, []string{"node", "create", "--listen", fmt.Sprintf("%s:%d", directB, adjacentPort)}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(iperfPort), "--from", "iperf"}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(blastPort), "--from", "blast"}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", li), "--to", to("iperf")}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", lb), "--to", to("blast")}},
	})
	if err != nil {
		return endpoints{}, err
	}
	ep := local(b.direct.a, li, lb)
	ep.inlet, ep.outlet = client, server
	return ep, nil
}

// tunAddr is the virtual address of the transparent mode's inlets in A: the clients connect
// to tunAddr:5201 and tunAddr:7000 as if B's servers were there.
const tunAddr = "10.250.0.1"

// setupAdjacentTun is the direct portal with transparent inlets: A's node serves
// tunAddr:iperfPort and tunAddr:blastPort on its TUN device and carries them to B's outlets.
func setupAdjacentTun(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("adjacent-tun")
	if err != nil {
		return endpoints{}, err
	}
	server := newNode(b, s, b.direct.b, dir, "b")
	client := newNode(b, s, b.direct.a, dir, "a")
	to := func(outlet string) string {
		return fmt.Sprintf("/ip4/%s/tcp/%d/secure/api/service/%s", directB, adjacentPort, outlet)
	}
	iperf, blast := fmt.Sprintf("%s:%d", tunAddr, iperfPort), fmt.Sprintf("%s:%d", tunAddr, blastPort)
	err = runAll(ctx, []step{
		{server, []string{"node", "create", "--listen", fmt.Sprintf("%s:%d", directB, adjacentPort)}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(iperfPort), "--from", "iperf"}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(blastPort), "--from", "blast"}},
		{client, []string{"tcp-inlet", "create", "--from", iperf, "--to", to("iperf"), "--tun"}},
		{client, []string{"tcp-inlet", "create", "--from", blast, "--to", to("blast"), "--tun"}},
	})
	if err != nil {
		return endpoints{}, err
	}
	return endpoints{ns: b.direct.a, iperf: iperf, blast: blast, inlet: client, outlet: server}, nil
}

// setupAdjacentHub is the story's shape: a hub in H with the project's authority and relay
// service; B enrolls, opens two outlets and a relay; A enrolls and opens two inlets via the
// relay. Two channel layers: each node's channel to the hub, and A's end-to-end channel to B.
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
	li, lb := localPorts("adjacent-hub")
	err = runAll(ctx, []step{
		{server, []string{"enroll", serverTicket}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(iperfPort), "--from", "iperf"}},
		{server, []string{"tcp-outlet", "create", "--to", fmt.Sprint(blastPort), "--from", "blast"}},
		{server, []string{"relay", "create", "bench"}},
		{client, []string{"enroll", clientTicket}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", li), "--via", "bench", "--to", "iperf"}},
		{client, []string{"tcp-inlet", "create", "--from", fmt.Sprintf("127.0.0.1:%d", lb), "--via", "bench", "--to", "blast"}},
	})
	if err != nil {
		return endpoints{}, err
	}
	return local(b.relay.a, li, lb), nil
}
