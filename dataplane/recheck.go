package dataplane

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/routing"
)

// Allow decides whether the peer node of a portal session may hold it, and says why not. The
// control plane evaluates the portal's current policy over the peer's current attributes,
// which change when the peer presents a refreshed credential.
type Allow func(peer routing.Peer) (bool, string)

// recheckLogEvery is the most often a portal logs the sessions its policy cut.
const recheckLogEvery = 10 * time.Second

// rechecker cuts the live sessions of an inlet or outlet whose peer no longer passes its
// policy. It runs when the control plane asks (a policy changed, a credential was
// re-presented, and once a second as a backstop), never per frame; each distinct peer is
// evaluated once per run.
type rechecker struct {
	allow Allow
	what  string // "the outlet's policy", for the reason the peers are told
	log   *ratelog.Logger
}

func newRechecker(allow Allow, what string, log *slog.Logger) rechecker {
	return rechecker{allow: allow, what: what, log: ratelog.New(log, slog.LevelWarn, "portal sessions cut by policy", recheckLogEvery)}
}

// run resets, at both ends, the sessions of g whose subject allow refuses, and returns how
// many it reset.
func (r *rechecker) run(g *groups, stats *Counters) int {
	if r.allow == nil {
		return 0
	}
	type verdict struct {
		ok  bool
		why string
	}
	verdicts := make(map[routing.Peer]verdict)
	cut := 0
	for _, s := range g.sessions() {
		if s.subject == nil {
			continue
		}
		v, seen := verdicts[s.subject]
		if !seen {
			v.ok, v.why = r.allow(s.subject)
			verdicts[s.subject] = v
		}
		if v.ok {
			continue
		}
		why := fmt.Errorf("denied by %s: %s", r.what, v.why)
		if s.end(true, why) {
			cut++
			stats.PolicyResets.Add(1)
			r.log.Note(slog.String("peer", s.subject.Identifier()), slog.String("reason", why.Error()))
		}
	}
	return cut
}
