package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/member"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
)

// Workers of a hub, behind its listener.
const (
	authorityWorker = member.AuthorityWorker
	relaysWorker    = member.RelaysWorker
	eventsWorker    = "project.events" // on members: announcements from the hub
	relayPrefix     = hub.RelayPrefix
)

// createProject turns this node into the hub of a new project: its identity becomes the
// authority and first administrator.
func (n *Node) createProject(ctx context.Context, req api.CreateProject) (_ api.Project, err error) {
	if n.project.Load() != nil {
		p := n.project.Load()
		return api.Project{}, fmt.Errorf("project create: this node is already in project %s; use another home for another project", p.name)
	}
	if !ticket.ValidProject(req.Name) {
		return api.Project{}, fmt.Errorf("project create: name %q: use lower-case letters, digits and '-', at most 63", req.Name)
	}
	if req.Lifetime != 0 && (req.Lifetime < 10*time.Second || req.Lifetime > authority.MaxCredentialLifetime) {
		return api.Project{}, fmt.Errorf("project create: --credential-lifetime %v: want between 10s and %v", req.Lifetime, authority.MaxCredentialLifetime)
	}
	// Everything that can be checked is checked before the node listens; a later failure
	// closes the new listener, and the listen address is stored only once the project is.
	public := req.PublicAddress
	if public == "" {
		public = req.Listen
	}
	if public != "" {
		if _, err := publicRoute(public); err != nil {
			return api.Project{}, err
		}
	}
	newListen := ""
	if req.Listen != "" && !contains(n.listenAddrs(), req.Listen) {
		l, lerr := n.listenTCP(req.Listen)
		if lerr != nil {
			return api.Project{}, fmt.Errorf("project create: %w", lerr)
		}
		addr := l.Addr().String()
		n.addListen(addr)
		newListen = req.Listen
		defer func() {
			if err != nil {
				l.Close()
				n.removeListen(addr)
			}
		}()
	}
	if req.PublicAddress == "" {
		listen := n.listenAddrs()
		if len(listen) == 0 {
			return api.Project{}, errors.New("project create: the hub must listen: give --listen HOST:PORT")
		}
		public = listen[len(listen)-1]
	}
	hubRoute, err := publicRoute(public)
	if err != nil {
		return api.Project{}, err
	}

	// The credential-signing key, attested by the hub's identity.
	now := n.cfg.Now()
	keyName := "credential-signing-" + strconv.FormatInt(now.UnixNano(), 36)
	key, err := n.vault.GenerateEd25519(keyName)
	if err != nil {
		return api.Project{}, err
	}
	k := n.self.keys()
	att, err := identity.Attest(k.signer, k.history.Identifier(), identity.PurposeCredentialSigning, key.Public(), now, now.Add(signingKeyLifetime))
	if err != nil {
		return api.Project{}, err
	}
	settings := [][2]string{
		{settingSigningKey, keyName},
		{settingSigningAttestation, hex.EncodeToString(att.Encode())},
		{settingStore, req.Store},
		{settingAuthority, hex.EncodeToString(k.history.Encode())},
		{settingPublicAddress, hubRoute.String()},
		{settingProjectRole, roleHub},
	}
	if req.Lifetime != 0 {
		settings = append(settings, [2]string{settingLifetime, req.Lifetime.String()})
	}
	for _, kv := range settings {
		if err := n.state.SetSetting(ctx, kv[0], kv[1]); err != nil {
			return api.Project{}, err
		}
	}
	auth, err := n.openAuthority(ctx, req.Name)
	if err != nil {
		return api.Project{}, err
	}
	self := n.self.history.Identifier()
	if err := auth.AddMember(ctx, self, self, map[string]string{authority.AttrAdmin: "true", authority.AttrEnroller: "true", authority.AttrRelay: "*"}, true); err != nil {
		auth.Store().Close()
		return api.Project{}, err
	}
	p := &project{name: req.Name, hub: true, public: hubRoute.String(), authority: k.history, auth: auth}
	p.service, p.relays = n.authorityService(p), n.relayService(p)
	b, err := auth.Issue(ctx, self)
	if err != nil {
		auth.Store().Close()
		return api.Project{}, err
	}
	if err := n.state.SetSetting(ctx, settingProject, req.Name); err != nil {
		auth.Store().Close()
		return api.Project{}, err
	}
	n.project.Store(p)
	if err := n.credentials.save(ctx, p, b); err != nil {
		return api.Project{}, err
	}
	if newListen != "" {
		if err := n.state.SetSetting(ctx, settingListen, newListen); err != nil {
			return api.Project{}, err
		}
	}
	if err := n.restartListener(); err != nil {
		return api.Project{}, err
	}
	n.log.Info("project created", "project", req.Name, "authority", self, "hub", hubRoute.String())
	return n.projectInfo(), nil
}

// publicRoute checks the address members dial and returns the route text to the hub there.
func publicRoute(public string) (routing.Path, error) {
	host, port, err := net.SplitHostPort(public)
	if err != nil {
		return nil, fmt.Errorf("project create: public address %q: want HOST:PORT", public)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("project create: members cannot dial %s; give --public-address HOST:PORT", public)
	}
	r, err := hubPath(host, port)
	if err != nil {
		return nil, fmt.Errorf("project create: public address %q: %w", public, err)
	}
	return r, nil
}

// hubPath is the route text members use to reach a hub at host:port.
func hubPath(host, port string) (routing.Path, error) {
	proto := routing.ProtoDNS
	if ip := net.ParseIP(host); ip != nil {
		proto = routing.ProtoIP4
		if ip.To4() == nil {
			proto = routing.ProtoIP6
		}
	}
	return routing.ParsePath("/" + proto + "/" + host + "/tcp/" + port)
}

func (n *Node) projectInfo() api.Project {
	p := n.project.Load()
	if p == nil {
		return api.Project{}
	}
	info := api.Project{Name: p.name, Authority: string(p.authority.Identifier()), Hub: p.public, Role: roleMember}
	if p.hub {
		info.Role = roleHub
		info.Lifetime = api.Duration(p.auth.Lifetime())
	} else {
		info.Hub = p.hubRoute.String()
		info.Connected = n.project.hubChannel() != nil
	}
	if b := p.cred.Load(); b != nil {
		info.CredentialExpires = b.Credential.Expires()
	}
	info.EventsDropped, info.RevokedRefused = n.revocations.events.Load(), n.revocations.revoked.Load()
	return info
}

// registerHubWorkers puts the authority and the relay service behind the hub's listener.
func (n *Node) registerHubWorkers(listenerFlow routing.FlowID) error {
	for _, name := range []string{authorityWorker, relaysWorker} {
		n.router.Unregister(name)
	}
	// Members' refreshes (Credential, Revocations) keep their 16 slots: a caller has at most 2
	// requests in flight, and strangers (enrollment, lapsed credentials) 4 slots of their own.
	auth := rpc.NewServer(n.ctx, n.router, authorityWorker, 16, n.log, n.project.serveAuthority).
		Limit(rpc.Limits{PerCaller: 2, Guest: func(p routing.Peer) bool { return !n.project.vouched(p) }, GuestSlots: 4})
	if err := n.router.Register(authorityWorker, auth, listenerFlow); err != nil {
		return err
	}
	relays := rpc.NewServer(n.ctx, n.router, relaysWorker, 16, n.log, n.project.serveRelays)
	if err := n.router.Register(relaysWorker, relays, listenerFlow); err != nil {
		return err
	}
	if p := n.project.Load(); p != nil && p.hub {
		return p.relays.Open(listenerFlow)
	}
	return nil
}

// The hub's services know a request's caller by its credential's attributes: a trust.Peer
// must stay a hub.Caller, or every request would be refused as coming through no channel.
var _ hub.Caller = (*trust.Peer)(nil)

// serveAuthority answers members through the project's authority service.
func (m *membership) serveAuthority(ctx context.Context, q *rpc.Request) (any, error) {
	p := m.Load()
	if p == nil || !p.hub {
		return nil, errNoProject
	}
	return p.service.Handle(ctx, q)
}

// serveRelays creates, deletes and lists relays through the project's relay service.
func (m *membership) serveRelays(ctx context.Context, q *rpc.Request) (any, error) {
	p := m.Load()
	if p == nil || !p.hub {
		return nil, errNoProject
	}
	return p.relays.Handle(ctx, q)
}

// relayService returns the relay service of hub project p, wired to this node.
func (n *Node) relayService(p *project) *hub.RelayService {
	return hub.NewRelayService(hub.RelayConfig{
		Project:       p.name,
		Router:        n.router,
		Owners:        n.state,
		Policy:        func(name string) *policy.Policy { return n.policies.policyOf("relay", name) },
		Revoked:       n.project.isRevoked,
		SenderRevoked: n.revocations.revokedSender,
		OverCap:       n.admit.relaysOverCap,
		PerIdentity:   n.cfg.Caps.RelaysPerIdentity,
		Logger:        n.log,
		Now:           n.cfg.Now,
	})
}

func validRelayName(s string) bool { return authority.ValidRelayName(s) }

// relayList lists the relays this node serves as a hub.
func (n *Node) relayList() []api.Relay {
	if p := n.project.Load(); p != nil && p.hub {
		return p.relays.List()
	}
	return []api.Relay{}
}

// listRelays lists the relays at the hub: its own table on the hub itself (whose local
// API is not a secure channel the relay service could authenticate), else the hub's answer.
func (n *Node) listRelays(ctx context.Context) ([]api.Relay, error) {
	if p := n.project.Load(); p != nil && p.hub {
		return n.relayList(), nil
	}
	var rs []api.Relay
	if err := n.callHub(ctx, relaysWorker, hub.RelayList{}, &rs); err != nil {
		return nil, fmt.Errorf("relay list: %w", err)
	}
	return rs, nil
}
