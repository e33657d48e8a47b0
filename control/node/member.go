package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// session is a member's channel to its hub, kept up by runSession.
type session struct {
	mu      sync.Mutex
	ch      *securechannel.Channel // nil while down
	changed chan struct{}          // closed and replaced whenever ch changes
	lastErr error                  // why the last attempt to reach the hub failed
}

var errHubDown = errors.New("the hub is not reachable")

// hubChannel returns the channel to the hub, or nil while it is down.
func (n *Node) hubChannel() *securechannel.Channel {
	n.session.mu.Lock()
	defer n.session.mu.Unlock()
	return n.session.ch
}

// setHub records the channel to the hub, or nil and why the last attempt to reach it
// failed, and wakes those waiting for it.
func (n *Node) setHub(ch *securechannel.Channel, err error) {
	n.session.mu.Lock()
	n.session.ch, n.session.lastErr = ch, err
	if n.session.changed != nil {
		close(n.session.changed)
	}
	n.session.changed = make(chan struct{})
	n.session.mu.Unlock()
}

// waitHub returns the channel to the hub, waiting for it while it is down. A hub that
// refused this node (no longer a member, say) is not down: waitHub returns at once.
func (n *Node) waitHub(ctx context.Context) (*securechannel.Channel, error) {
	for {
		n.session.mu.Lock()
		ch, changed, lastErr := n.session.ch, n.session.changed, n.session.lastErr
		if changed == nil {
			n.session.changed = make(chan struct{})
			changed = n.session.changed
		}
		n.session.mu.Unlock()
		if ch != nil {
			return ch, nil
		}
		if errors.Is(lastErr, securechannel.ErrRefused) {
			return nil, fmt.Errorf("the hub refused this node: %w", lastErr)
		}
		if n.project.Load() == nil {
			return nil, errNoProject
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("%w: %w", errHubDown, lastErr)
			}
			return nil, fmt.Errorf("%w: %w", errHubDown, ctx.Err())
		}
	}
}

// projectHop resolves /project/NAME: the channel to the hub, or nil on the hub itself.
func (n *Node) projectHop(ctx context.Context, name string) (*securechannel.Channel, error) {
	p := n.project.Load()
	if p == nil {
		return nil, errNoProject
	}
	if p.name != name {
		return nil, fmt.Errorf("this node is in project %s, not %s", p.name, name)
	}
	if p.hub {
		return nil, nil
	}
	return n.waitHub(ctx)
}

// connectHub opens a channel to the hub that verifies the authority's identity.
func (n *Node) connectHub(ctx context.Context, p *project, require bool) (*securechannel.Channel, error) {
	path := append(append(routing.Path{}, p.hubRoute...), routing.Hop{Proto: routing.ProtoSecure, Value: listenerName})
	res, err := n.resolve(ctx, path, []identity.Identifier{p.authority.Identifier()}, require)
	if err != nil {
		return nil, err
	}
	return res.channels[len(res.channels)-1], nil
}

// runSession keeps the member's channel to the hub up: it reconnects (the transport spaces
// attempts with jittered exponential backoff), re-opens the node to the hub's flow, and
// re-registers its relays each time.
func (n *Node) runSession(ctx context.Context, p *project) {
	var failures int
	for ctx.Err() == nil && n.project.Load() == p {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		ch, err := n.connectHub(cctx, p, true)
		cancel()
		if err != nil {
			n.setHub(nil, err)
			failures++
			if failures == 1 || failures%10 == 0 {
				msg := "hub unreachable; retrying"
				if errors.Is(err, securechannel.ErrRefused) {
					msg = "the hub refused this node; retrying"
				}
				n.log.Warn(msg, "hub", p.hubRoute.String(), "err", err, "attempts", failures)
			}
			select {
			case <-time.After(backoff(failures)):
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		n.router.Open(listenerName, ch.Flow()) // e2e channels arrive through relays
		n.router.Open(eventsWorker, ch.Flow())
		n.setHub(ch, nil)
		n.log.Info("connected to the hub", "project", p.name, "hub", p.hubRoute.String())
		go n.fetchRevocations(ctx, p)
		n.reregisterRelays(ctx)
		select {
		case <-ch.Done():
			n.log.Warn("lost the hub", "project", p.name, "reason", ch.Err())
		case <-ctx.Done():
		}
		n.setHub(nil, nil)
	}
}

// backoff is the wait before the next attempt to reach the hub, on top of the transport's
// own spacing of dials to an address that refuses them.
func backoff(failures int) time.Duration {
	d := 100 * time.Millisecond << min(failures, 4) // up to 1.6s
	return d/2 + time.Duration(time.Now().UnixNano()%int64(d/2))
}

// enroll redeems a ticket at its hub and makes this node a member of the project.
func (n *Node) enroll(ctx context.Context, text string) (api.Project, error) {
	if b, err := os.ReadFile(text); err == nil && len(text) < 4096 { // a file holding the ticket
		text = string(b)
	}
	t, err := ticket.Parse(text)
	if err != nil {
		return api.Project{}, err
	}
	if p := n.project.Load(); p != nil {
		return api.Project{}, fmt.Errorf("enroll: this node is already in project %s; use another home to join another", p.name)
	}
	auth, err := identity.DecodeHistory(t.Authority)
	if err != nil {
		return api.Project{}, fmt.Errorf("enroll: the ticket's authority identity: %w", err)
	}
	hubRoute, err := routing.ParsePath(t.Hub)
	if err != nil {
		return api.Project{}, fmt.Errorf("enroll: the ticket's hub route: %w", err)
	}
	p := &project{name: t.Project, hubRoute: hubRoute, authority: auth}
	// A provisional project so the hub's credential can be checked while enrolling.
	n.project.Store(p)
	fail := func(err error) (api.Project, error) {
		n.project.Store(nil)
		return api.Project{}, err
	}
	ch, err := n.connectHub(ctx, p, false)
	if err != nil {
		if errors.Is(err, trust.ErrNotAuthorized) {
			return fail(fmt.Errorf("enroll: the hub at %s is not the authority of project %s: %w", t.Hub, t.Project, err))
		}
		return fail(fmt.Errorf("enroll: connect to the hub at %s: %w; check that the hub's node runs and that this machine reaches that address, then enroll again with the same ticket (it is not used up)", t.Hub, err))
	}
	defer ch.Close()
	var ans hub.CredentialAnswer
	req := hub.Enroll{Secret: t.Secret}
	if err := rpc.Call(ctx, n.router, routing.MustRoute(ch.Address(), routing.LocalAddress(authorityWorker)), ch.Flow(), req, &ans); err != nil {
		return fail(err)
	}
	b, err := n.checkCredential(p, ans.Credential)
	if err != nil {
		return fail(err)
	}
	for _, kv := range [][2]string{
		{settingAuthority, hex.EncodeToString(t.Authority)},
		{settingProjectHub, t.Hub},
		{settingProjectRole, roleMember},
		{settingCredential, hex.EncodeToString(b.Encode())},
		{settingProject, t.Project},
	} {
		if err := n.state.SetSetting(ctx, kv[0], kv[1]); err != nil {
			return fail(err)
		}
	}
	p.cred.Store(b)
	if err := n.restartListener(); err != nil {
		return api.Project{}, err
	}
	go n.runSession(n.ctx, p)
	n.log.Info("enrolled", "project", t.Project, "authority", auth.Identifier())
	return n.projectInfo(), nil
}

// checkCredential decodes a credential from the authority and checks it is this node's.
func (n *Node) checkCredential(p *project, raw []byte) (*credential.Bundle, error) {
	b, err := credential.DecodeBundle(raw)
	if err != nil {
		return nil, fmt.Errorf("credential from the authority: %w", err)
	}
	trusted := func(id identity.Identifier) *identity.History {
		if id == p.authority.Identifier() {
			return p.authorityHistory()
		}
		return nil
	}
	if err := b.Verify(trusted, n.self.history.Identifier(), n.cfg.Now()); err != nil {
		return nil, fmt.Errorf("credential from the authority: %w", err)
	}
	return b, nil
}

// requestCredential asks the hub for a fresh credential.
func (n *Node) requestCredential(ctx context.Context, p *project) (*credential.Bundle, error) {
	ch := n.hubChannel()
	if ch == nil {
		return nil, errors.New("the hub is not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ans hub.CredentialAnswer
	if err := rpc.Call(ctx, n.router, routing.MustRoute(ch.Address(), routing.LocalAddress(authorityWorker)), ch.Flow(), hub.Credential{}, &ans); err != nil {
		return nil, err
	}
	return n.checkCredential(p, ans.Credential)
}

// callHub sends a request to a worker of the hub: locally on the hub, else over the session.
func (n *Node) callHub(ctx context.Context, worker string, req, resp any) error {
	p := n.project.Load()
	if p == nil {
		return errNoProject
	}
	if p.hub {
		return rpc.Call(ctx, n.router, routing.MustRoute(routing.LocalAddress(worker)), routing.FlowLocal, req, resp)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := n.waitHub(wctx)
	if err != nil {
		return err
	}
	return rpc.Call(wctx, n.router, routing.MustRoute(ch.Address(), routing.LocalAddress(worker)), ch.Flow(), req, resp)
}

// createRelay registers a relay at the hub and remembers it, so it comes back after a
// reconnect or restart.
func (n *Node) createRelay(ctx context.Context, name string) (api.Relay, error) {
	var r api.Relay
	if err := n.callHub(ctx, relaysWorker, hub.RelayCreate{Name: name}, &r); err != nil {
		return api.Relay{}, fmt.Errorf("relay create: %w", err)
	}
	if p := n.project.Load(); p != nil && !p.hub {
		if err := n.state.AddRelay(ctx, name, n.cfg.Now().Unix()); err != nil {
			return api.Relay{}, err
		}
	}
	return r, nil
}

// reregisterRelays registers again, on a fresh channel to the hub, the relays this node holds.
func (n *Node) reregisterRelays(ctx context.Context) {
	names, err := n.state.Relays(ctx)
	if err != nil {
		n.log.Warn("relays: read state", "err", err)
		return
	}
	for _, name := range names {
		var r api.Relay
		if err := n.callHub(ctx, relaysWorker, hub.RelayCreate{Name: name}, &r); err != nil {
			n.log.Warn("relay not re-registered", "name", name, "err", err)
		}
	}
}
