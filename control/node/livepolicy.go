package node

import (
	"context"
	"sync"
	"time"
)

// Policies apply to live portal sessions, not only to new ones: each session knows its
// peer node, and the node re-checks the sessions of every inlet and outlet against their
// current policy at once when something a policy reads changes (a policy is set, a peer
// re-presents its credential with other attributes), and once a second as a backstop (a
// session opened while a check ran). Sessions that no longer pass are reset at both ends.
//
// A member's attributes change at the authority; the hub tells the member's node to fetch
// its new credential at once (an event with Credential set), which the node then re-presents on all its
// channels, so its peers' checks see the new attributes within a second. A member that
// ignores the nudge keeps its old attributes only until its credential expires (one
// credential lifetime at most); deleting a member cuts it at once.

// recheckEvery is the backstop's period.
const recheckEvery = time.Second

// recheck re-checks the live sessions of the portals, when asked and every recheckEvery.
type recheck struct {
	once sync.Once
	kick chan struct{}
}

func (r *recheck) ch() chan struct{} {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
	return r.kick
}

// now asks for a re-check of every portal's live sessions now. It never blocks: requests
// made while one is pending are one.
func (r *recheck) now() {
	select {
	case r.ch() <- struct{}{}:
	default:
	}
}

// run calls check (the portals' re-check of their live sessions) when asked, and every
// recheckEvery, until ctx ends.
func (r *recheck) run(ctx context.Context, check func()) {
	ticking(ctx, recheckEvery, r.ch(), check)
}

// ticking calls f every period, and at once on each kick (nil: never), until ctx ends.
func ticking(ctx context.Context, period time.Duration, kick <-chan struct{}, f func()) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
		}
		f()
	}
}

// recheck resets the live sessions that their inlet's or outlet's policy no longer
// admits, and returns how many. The portals log what they cut.
func (ps *portals) recheck() int {
	ps.mu.Lock()
	outs := make([]interface{ Recheck() int }, 0, 2*len(ps.outlets))
	for _, o := range ps.outlets {
		outs = append(outs, o.dp, o.pk)
	}
	ins := make([]portalInlet, 0, len(ps.inlets))
	for _, in := range ps.inlets {
		ins = append(ins, in.dp)
	}
	ps.mu.Unlock()
	cut := 0
	for _, o := range outs {
		cut += o.Recheck()
	}
	for _, in := range ins {
		cut += in.Recheck()
	}
	return cut
}
