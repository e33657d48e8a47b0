package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// counts are the node's own counters for metrics (metrics.go) that no lower package keeps:
// handshakes by role and outcome, and refusals by reason. They change once per handshake or
// refused connection, never per message, and are read at scrape time.
type counts struct {
	// handshakes, by role: 0 initiator, 1 responder. The responder's starts are its
	// listener's answered first messages (securechannel.ListenerStats.Answered).
	started   [2]atomic.Uint64
	completed [2]atomic.Uint64
	failed    [2][numFailures]atomic.Uint64
	// refused, by reason, what this node refused or could not serve and no lower package
	// counts: inlet connections not opened, peers' handshakes refused for their credential.
	refused [numRefusals]atomic.Uint64
}

const (
	initiator = 0
	responder = 1
)

var roleNames = [2]string{"initiator", "responder"}

// Why a handshake failed.
const (
	failCredential = iota // the peer's identity or credential did not hold here
	failCapacity          // over a cap per identity (securechannel.Admitter)
	failRefused           // the peer refused this side
	failTimeout           // no answer in time
	failOther             // a broken message, a link gone
	numFailures
)

var failureNames = [numFailures]string{"credential", "capacity", "refused_by_peer", "timeout", "other"}

// Why a connection or channel was refused.
const (
	refusePolicy     = iota // an ABAC policy said no
	refuseCredential        // an identity or credential did not hold
	refuseCapacity          // over a cap
	refusePathDown          // the path to the outlet could not be built
	numRefusals
)

var refusalNames = [numRefusals]string{"policy", "credential", "capacity", "path_down"}

// countingAuth is the Authenticator of the node's channels: the trust one, counting
// the peers it does not accept. It keeps trust's Refresher.
type countingAuth struct {
	inner  *trust.Authenticator
	c      *counts
	role   int
	failed atomic.Bool // for initiate: this channel's failure is counted
}

func (a *countingAuth) Payload() ([]byte, error) { return a.inner.Payload() }

func (a *countingAuth) Authenticate(payload, remoteStatic []byte) (routing.Peer, error) {
	p, err := a.inner.Authenticate(payload, remoteStatic)
	if err != nil {
		a.failed.Store(true)
		a.c.failed[a.role][failCredential].Add(1)
		if a.role == responder {
			a.c.refused[refuseCredential].Add(1)
		}
	}
	return p, err
}

func (a *countingAuth) Refresh(peer routing.Peer, data []byte) error {
	return a.inner.Refresh(peer, data)
}

// countingAdmitter counts the handshakes the node's admission refuses.
type countingAdmitter struct {
	inner securechannel.Admitter
	c     *counts
}

func (a countingAdmitter) Admit(ad securechannel.Admission) (bool, func(), error) {
	member, release, err := a.inner.Admit(ad)
	if err != nil {
		a.c.failed[responder][failCapacity].Add(1)
	}
	return member, release, err
}

// accepted counts and registers a channel the listener established.
func (n *Node) accepted(c *securechannel.Channel) {
	n.counts.completed[responder].Add(1)
	n.channels.add(c)
}

// initiate opens a secure channel as securechannel.Initiate does, counting the handshake.
func (n *Node) initiate(ctx context.Context, to routing.Destination, cfg securechannel.Config) (*securechannel.Channel, error) {
	n.counts.started[initiator].Add(1)
	auth, _ := cfg.Auth.(*countingAuth)
	if auth != nil {
		auth.role = initiator
	}
	ch, err := securechannel.Initiate(ctx, n.router, to, cfg)
	switch {
	case err == nil:
		n.counts.completed[initiator].Add(1)
	case auth != nil && auth.failed.Load(): // counted by Authenticate
	case errors.Is(err, securechannel.ErrRefused) && strings.Contains(err.Error(), "refused: capacity"):
		n.counts.failed[initiator][failCapacity].Add(1)
	case errors.Is(err, securechannel.ErrRefused):
		n.counts.failed[initiator][failRefused].Add(1)
	case errors.Is(err, context.DeadlineExceeded):
		n.counts.failed[initiator][failTimeout].Add(1)
	default:
		n.counts.failed[initiator][failOther].Add(1)
	}
	return ch, err
}

// inletRefused counts an inlet connection that its path could not carry, by reason.
func (n *Node) inletRefused(err error) {
	var why int
	switch {
	case errors.Is(err, errPolicy):
		why = refusePolicy
	case errors.Is(err, trust.ErrNoCredential), errors.Is(err, trust.ErrRevoked), errors.Is(err, trust.ErrNotAuthorized),
		strings.Contains(err.Error(), "responder not accepted"):
		why = refuseCredential
	case errors.Is(err, securechannel.ErrRefused) && strings.Contains(err.Error(), "refused: capacity"):
		why = refuseCapacity
	case errors.Is(err, securechannel.ErrRefused) && strings.Contains(err.Error(), "credential"):
		why = refuseCredential
	default:
		why = refusePathDown
	}
	n.counts.refused[why].Add(1)
}
