package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// A mode is one way of carrying A's connections to B's servers. setup starts what it needs
// (registering its cleanup on s) and says where the client in A connects.
type mode struct {
	key   string
	name  string
	topo  string   // "direct" or "relay"
	needs []string // tools it cannot run without (see peerTools; "adjacent")
	setup func(ctx context.Context, b *bench, s *stage) (endpoints, error)
}

// endpoints are where the client connects for iperf3, blast and pgbench, from namespace ns.
type endpoints struct {
	ns               *netns.Namespace
	iperf, blast, pg string // host:port
	inlet, outlet    *node  // the portal's nodes, for the scale figures; nil for the peers
}

// local is the endpoints of a tunnel that forwards ports on ns's loopback.
func local(ns *netns.Namespace, iperf, blast, pg int) endpoints {
	at := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	return endpoints{ns: ns, iperf: at(iperf), blast: at(blast), pg: at(pg)}
}

// at is the endpoints of a mode whose client reaches B's servers on B's address host (raw
// TCP, or an overlay address): the servers startServers runs there on all addresses, and
// PostgreSQL, which listens on all of B's addresses.
func at(ns *netns.Namespace, host string) endpoints {
	return endpoints{ns: ns,
		iperf: fmt.Sprintf("%s:%d", host, openIperfPort),
		blast: fmt.Sprintf("%s:%d", host, openBlastPort),
		pg:    fmt.Sprintf("%s:%d", host, pgPort)}
}

// modes in the order of the table: baselines, then the portal, then the relay shape.
//
// A new mode plugs in here, with one line: its key (for -modes), its name in the table, its
// topology and the tools it needs, and a setup that starts what carries A's connections to
// B's servers (iperf3 on iperfPort, blast on blastPort, PostgreSQL on pgPort, all on B's
// loopback) and returns where A's clients connect (endpoints; local() for a tunnel with
// ports on A's loopback, which then takes its ports from localPorts). Every measure then
// runs through it, and its row, chart bars and JSON follow; a goal that names it is one
// more line in goals (report.go). Another kind of adjacent inlet on the direct topology
// is adjacentDirect or adjacentTun with its extra tcp-inlet flags, e.g. a raw inlet:
//
//	{key: "adjacent-raw", name: "adjacent, direct, raw (--tun --raw)", topo: "direct", needs: []string{"adjacent"}, setup: adjacentTun(rawAddr, "--raw")},
var modes = []mode{
	{key: "raw", name: "raw TCP over the veth", topo: "direct", setup: setupRaw},
	{key: "ssh", name: "ssh -L, aes256-gcm", topo: "direct", needs: []string{"sshd", "ssh", "ssh-keygen"}, setup: setupSSH},
	{key: "stunnel", name: "stunnel, TLS 1.3, both sides", topo: "direct", needs: []string{"stunnel"}, setup: setupStunnel},
	{key: "wireguard", name: "wireguard-go", topo: "direct", needs: []string{"wireguard-go", "wg"}, setup: setupWireguard},
	{key: "nebula", name: "Nebula, AES-256-GCM", topo: "direct", needs: []string{"nebula", "nebula-cert"}, setup: setupNebula},
	{key: "socat", name: "socat, two plain hops", topo: "direct", needs: []string{"socat"}, setup: setupSocat},
	{key: "adjacent", name: "adjacent, direct portal", topo: "direct", needs: []string{"adjacent"}, setup: adjacentDirect()},
	{key: "adjacent-tun", name: "adjacent, direct, transparent (--tun)", topo: "direct", needs: []string{"adjacent"}, setup: adjacentTun(tunAddr)},
	{key: "adjacent-raw", name: "adjacent, direct, packet mode (--tun --raw)", topo: "direct", needs: []string{"adjacent"}, setup: adjacentTun(rawAddr, "--raw")},
	{key: "adjacent-hub", name: "adjacent, through the hub", topo: "relay", needs: []string{"adjacent"}, setup: setupAdjacentHub},
	{key: "ssh-relay", name: "ssh -R + ssh -L via a hub", topo: "relay", needs: []string{"sshd", "ssh", "ssh-keygen"}, setup: setupSSHRelay},
}

// localPorts are the ports in A's loopback that a mode's tunnel forwards to iperf3, blast
// and PostgreSQL; each mode has its own, so nothing one mode left behind can answer for
// another.
func localPorts(key string) (iperf, blast, pg int) {
	base, ok := map[string]int{"ssh": 20010, "stunnel": 20020, "socat": 20040,
		"adjacent": 20050, "adjacent-hub": 20060, "adjacent-tun": 20080, "adjacent-raw": 20090, "ssh-relay": 20070}[key]
	if !ok {
		panic("no local ports for mode " + key)
	}
	return base + 1, base + 2, base + 3
}

func modeKeys() []string {
	var ks []string
	for _, m := range modes {
		ks = append(ks, m.key)
	}
	return ks
}

func findMode(key string) *mode {
	for i := range modes {
		if modes[i].key == key {
			return &modes[i]
		}
	}
	return nil
}

// newResult is m's row with no numbers yet.
func newResult(m mode) result {
	nan := math.NaN()
	return result{Key: m.key, Name: m.name, Topology: m.topo,
		UpGbps: nan, DownGbps: nan, RTTus: nan, RTTp99us: nan, Connectus: nan, Connp99us: nan,
		TPS: nan, ConnPerSec: nan, InletKiBPerConn: nan, OutletKiBPerConn: nan,
		InletSyscallsPerFrame: nan, OutletSyscallsPerFrame: nan, BytesPerFrame: nan}
}

// Result statuses.
const (
	statusOK      = "ok"
	statusSkipped = "skipped"
	statusFailed  = "failed"
	statusNotRun  = "not run"
)

// result is one mode's row. Missing numbers are NaN.
type result struct {
	Key, Name, Topology    string
	Status, Note           string
	UpGbps, DownGbps       float64 // one iperf3 stream A->B and B->A
	RTTus, RTTp99us        float64 // 64-byte request/response round trips
	Connectus, Connp99us   float64 // connect plus first round trip, as internal/connprobe defines it
	TPS                    float64 // pgbench -S transactions per second, 8 clients
	ConnPerSec             float64 // new connections per second from 32 clients
	InletKiBPerConn        float64 // node memory per idle connection, at the inlet
	OutletKiBPerConn       float64 // and at the outlet
	InletSyscallsPerFrame  float64 // system calls per frame during a bulk stream A->B
	OutletSyscallsPerFrame float64
	BytesPerFrame          float64 // the frames' average size in that stream
	SetupSecs, MeasureSecs float64
}

// runModes runs the chosen modes -rounds times, in turns (every mode once, then again), and
// returns a row for every mode (skipped, failed and not run included) holding the median of
// its rounds: the machine's speed drifts over minutes, and turns spread the drift over all
// modes instead of favouring the one that ran in a fast minute.
func (b *bench) runModes(ctx context.Context) []result {
	var rounds [][]result
	for i := range b.cfg.rounds {
		if b.cfg.rounds > 1 {
			progress("round %d of %d", i+1, b.cfg.rounds)
		}
		rounds = append(rounds, b.runRound(ctx))
	}
	return medians(rounds)
}

// runRound runs the chosen modes one after another, each with its own stage, and returns a
// row for every mode.
func (b *bench) runRound(ctx context.Context) []result {
	var results []result
	for _, m := range modes {
		r := newResult(m)
		switch {
		case len(b.cfg.modes) > 0 && !slices.Contains(b.cfg.modes, m.key):
			continue // not chosen with -modes: no row
		case ctx.Err() != nil:
			r.Status, r.Note = statusNotRun, "interrupted"
		default:
			if why := b.tools.missing(m.needs); why != "" {
				r.Status, r.Note = statusSkipped, why
				progress("%s: skipped: %s", m.name, why)
			} else {
				b.runMode(ctx, &m, &r)
			}
		}
		results = append(results, r)
	}
	return results
}

func (b *bench) runMode(ctx context.Context, m *mode, r *result) {
	progress("%s: setting up", m.name)
	s, err := newStage(filepath.Join(b.out, "logs", m.key))
	if err != nil {
		r.Status, r.Note = statusFailed, err.Error()
		return
	}
	defer s.close()
	start := time.Now()
	// Fresh servers in B for every mode, on its loopback: nothing a failed mode left
	// half-done (an iperf3 server stuck in a test) carries over to the next.
	server := b.direct.b
	if m.topo == "relay" {
		server = b.relay.b
	}
	var pg *postgres
	var pgErr error
	if b.cfg.wants("tps") {
		pg, pgErr = b.postgresIn(ctx, m.topo, server)
	}
	ep, err := endpoints{}, b.startServers(ctx, s, "server", server, "127.0.0.1", iperfPort, blastPort)
	if err == nil {
		ep, err = m.setup(ctx, b, s)
	}
	r.SetupSecs = time.Since(start).Seconds()
	if ctx.Err() != nil {
		r.Status, r.Note = statusNotRun, "interrupted"
		return
	}
	if err != nil {
		r.Status, r.Note = statusFailed, "setup: "+err.Error()
		progress("%s: %s", m.name, r.Note)
		return
	}
	start = time.Now()
	err = b.measure(ctx, ep, r, pg)
	r.MeasureSecs = time.Since(start).Seconds()
	if ctx.Err() != nil {
		r.Status, r.Note = statusNotRun, "interrupted"
		return
	}
	if err != nil {
		r.Status, r.Note = statusFailed, err.Error()
		progress("%s: %s", m.name, r.Note)
		return
	}
	if pgErr != nil {
		r.Note = "tps: " + pgErr.Error()
	}
	if err := b.measureRate(ctx, ep, r); err != nil && ctx.Err() == nil {
		r.Note = "rate: " + err.Error()
		progress("%s: %s", m.name, r.Note)
	}
	if ep.inlet != nil && ctx.Err() == nil {
		if err := b.measureScale(ctx, ep, r); err != nil {
			r.Note = "scale: " + err.Error()
			progress("%s: %s", m.name, r.Note)
		}
		if err := b.measureSyscalls(ctx, ep, r); err != nil {
			r.Note = "system calls: " + err.Error()
			progress("%s: %s", m.name, r.Note)
		}
	}
	r.Status = statusOK
	progress("%s: %s Gbit/s A->B, %s Gbit/s B->A, RTT p50 %s, connect+first RTT p50 %s, %s tps",
		m.name, gbps(r.UpGbps), gbps(r.DownGbps), latency(r.RTTus), latency(r.Connectus), count(r.TPS))
}

// medians merges the rounds' rows, mode by mode: each number is the median of the rounds
// that measured it, the times are summed, and a round that failed makes the row failed with
// its note.
func medians(rounds [][]result) []result {
	if len(rounds) == 0 {
		return nil
	}
	merged := slices.Clone(rounds[0])
	for j := range merged {
		m := &merged[j]
		for _, round := range rounds[1:] {
			r := round[j]
			m.SetupSecs += r.SetupSecs
			m.MeasureSecs += r.MeasureSecs
			if m.Status != statusFailed && r.Status != statusOK {
				m.Status, m.Note = r.Status, r.Note
			}
		}
		for k, field := range m.numbers() {
			var vs []float64
			for _, round := range rounds {
				if v := *round[j].numbers()[k]; !math.IsNaN(v) {
					vs = append(vs, v)
				}
			}
			*field = median(vs)
		}
	}
	return merged
}

// numbers are r's measured figures.
func (r *result) numbers() []*float64 {
	return []*float64{&r.UpGbps, &r.DownGbps, &r.RTTus, &r.RTTp99us, &r.Connectus, &r.Connp99us,
		&r.TPS, &r.ConnPerSec, &r.InletKiBPerConn, &r.OutletKiBPerConn,
		&r.InletSyscallsPerFrame, &r.OutletSyscallsPerFrame, &r.BytesPerFrame}
}

// median is the middle of vs (the mean of the middle two for an even count), NaN for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
