package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/member"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// hubSession is a member's session with its hub (control/member).
type hubSession = member.Session[*securechannel.Channel]

var errHubDown = member.ErrHubDown

// hubChannel returns the channel to the hub, or nil while it is down (and on a hub).
func (m *membership) hubChannel() *securechannel.Channel {
	p := m.Load()
	if p == nil {
		return nil
	}
	s := p.session.Load()
	if s == nil {
		return nil
	}
	ch, _ := s.Channel()
	return ch
}

// waitHub returns the channel to the hub, waiting for it while it is down. A hub that
// refused this node (no longer a member, say) is not down: waitHub returns at once.
func (m *membership) waitHub(ctx context.Context) (*securechannel.Channel, error) {
	p := m.Load()
	if p == nil {
		return nil, errNoProject
	}
	s := p.session.Load()
	if s == nil {
		return nil, fmt.Errorf("%w: this node is enrolling", errHubDown)
	}
	return s.Wait(ctx)
}

// projectHop resolves /project/NAME: the channel to the hub, or nil on the hub itself.
func (m *membership) projectHop(ctx context.Context, name string) (*securechannel.Channel, error) {
	p := m.Load()
	if p == nil {
		return nil, errNoProject
	}
	if p.name != name {
		return nil, fmt.Errorf("this node is in project %s, not %s", p.name, name)
	}
	if p.hub {
		return nil, nil
	}
	return m.waitHub(ctx)
}

type hubChannelKey struct{}

// withHubChannel marks ctx as resolving the member's channel to its hub: the last channel of
// the route is the one on which the node learns the authority's rotation
// (trust.Config.AuthorityChannel).
func withHubChannel(ctx context.Context) context.Context {
	return context.WithValue(ctx, hubChannelKey{}, true)
}

func isHubChannel(ctx context.Context) bool { return ctx.Value(hubChannelKey{}) != nil }

// connectHub opens a channel to the hub that verifies the authority's identity.
func (n *Node) connectHub(ctx context.Context, p *project, require bool) (*securechannel.Channel, error) {
	path := append(append(routing.Path{}, p.hubRoute...), routing.Hop{Proto: routing.ProtoSecure, Value: listenerName})
	res, err := n.resolve(withHubChannel(ctx), path, []identity.Identifier{p.authority.Identifier()}, require)
	if err != nil {
		return nil, err
	}
	return res.channels[len(res.channels)-1], nil
}

// newSession gives member project p its session with the hub (member.Session), which
// runSession brings up: it reconnects (the transport spaces attempts too), re-opens the
// node to the hub's flow, fetches the revocations in force and re-registers the node's
// relays each time.
func (n *Node) newSession(p *project) {
	p.session.Store(member.NewSession(member.Config[*securechannel.Channel]{
		Project: p.name,
		Hub:     p.hubRoute.String(),
		Router:  n.router,
		Connect: func(ctx context.Context) (*securechannel.Channel, error) { return n.connectHub(ctx, p, true) },
		Open: func(ch *securechannel.Channel) {
			n.router.Open(listenerName, ch.Flow()) // e2e channels arrive through relays
			n.router.Open(eventsWorker, ch.Flow())
		},
		Up:     func(ctx context.Context, _ *securechannel.Channel) { go n.revocations.fetchRevocations(ctx, p) },
		Relays: n.state.Relays,
		Alive:  func() bool { return n.project.Load() == p },
		Logger: n.log,
	}))
}

// runSession keeps the member's channel to the hub up while p is the node's project.
func (n *Node) runSession(ctx context.Context, p *project) {
	if s := p.session.Load(); s != nil {
		s.Run(ctx)
	}
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
	if err := rpc.Call(ctx, n.router, routing.Through(ch).Worker(authorityWorker), req, &ans); err != nil {
		return fail(err)
	}
	b, err := n.credentials.check(p, ans.Credential)
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
	n.newSession(p)
	go n.runSession(n.ctx, p)
	n.log.Info("enrolled", "project", t.Project, "authority", auth.Identifier())
	return n.projectInfo(), nil
}

// callHub sends a request to a worker of the hub: locally on the hub, else over the session.
func (n *Node) callHub(ctx context.Context, worker string, req, resp any) error {
	p := n.project.Load()
	if p == nil {
		return errNoProject
	}
	if p.hub {
		return rpc.Call(ctx, n.router, routing.Destination{}.Worker(worker), req, resp)
	}
	s := p.session.Load()
	if s == nil {
		return fmt.Errorf("%w: this node is enrolling", errHubDown)
	}
	return s.Call(ctx, worker, req, resp)
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

// deleteRelay drops a relay at the hub and from the state.
func (n *Node) deleteRelay(ctx context.Context, name string) error {
	err := n.callHub(ctx, relaysWorker, hub.RelayDelete{Name: name}, nil)
	if derr := n.state.DeleteRelay(ctx, name); err == nil {
		err = derr
	}
	return err
}
