package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/access"
	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/control/trust"
	"github.com/adjacentnet/adjacent/routing"
)

// Workers of a hub, behind its listener.
const (
	authorityWorker = "authority"
	relaysWorker    = "relays"
	eventsWorker    = "project.events" // on members: announcements from the hub
	relayPrefix     = "forward_to_"
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
		l, lerr := n.tcp.Listen(req.Listen)
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
	p.service = n.authorityService(p)
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
	if err := n.saveCredential(ctx, p, b); err != nil {
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
		info.Connected = n.hubChannel() != nil
	}
	if b := p.cred.Load(); b != nil {
		info.CredentialExpires = b.Credential.Expires()
	}
	info.EventsDropped, info.RevokedRefused = n.eventRefusals.events.Load(), n.eventRefusals.revoked.Load()
	return info
}

// registerHubWorkers puts the authority and the relay service behind the hub's listener.
func (n *Node) registerHubWorkers(listenerFlow routing.FlowID) error {
	for _, name := range []string{authorityWorker, relaysWorker} {
		n.router.Unregister(name)
	}
	auth := rpc.NewServer(n.ctx, n.router, authorityWorker, 16, n.log, n.serveAuthority)
	if err := n.router.Register(authorityWorker, auth, listenerFlow); err != nil {
		return err
	}
	relays := rpc.NewServer(n.ctx, n.router, relaysWorker, 16, n.log, n.serveRelays)
	if err := n.router.Register(relaysWorker, relays, listenerFlow); err != nil {
		return err
	}
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	for name, r := range n.relays.m {
		n.router.Unregister(relayPrefix + name)
		if err := n.router.Register(relayPrefix+name, r.relay, listenerFlow); err != nil {
			return err
		}
	}
	n.relays.flow = listenerFlow
	return nil
}

func peerOf(q *rpc.Request) (*trust.Peer, error) {
	p, ok := q.Peer.(*trust.Peer)
	if !ok {
		return nil, errors.New("requests to the authority must come through a secure channel")
	}
	return p, nil
}

// serveAuthority answers members through the project's authority service.
func (n *Node) serveAuthority(ctx context.Context, q *rpc.Request) (any, error) {
	p := n.project.Load()
	if p == nil || !p.hub {
		return nil, errNoProject
	}
	return p.service.Handle(ctx, q)
}

// relays are the hub's relays, by name.
type relays struct {
	mu   sync.Mutex
	m    map[string]*hubRelay
	flow routing.FlowID // the listener flow they are opened to
}

type hubRelay struct {
	relay   *routing.Relay
	owner   string
	clients relayClients
}

// maxRelayClients caps the clients a relay remembers; later ones are only counted.
const maxRelayClients = 256

// relayClients are the identities whose messages a relay admitted, for relay list and
// status on the hub. A hit costs a sync.Map load and two atomic operations.
type relayClients struct {
	m     sync.Map // identifier -> *relayClient
	n     atomic.Int32
	other atomic.Uint64 // messages of clients beyond the cap
}

type relayClient struct {
	lastSeen atomic.Int64 // unix nanoseconds
	messages atomic.Uint64
	bytes    atomic.Uint64 // of the payloads it sent through the relay
}

func (c *relayClients) note(m *routing.Message, now time.Time) {
	if m.Local.Peer == nil {
		return
	}
	id := m.Local.Peer.Identifier()
	v, ok := c.m.Load(id)
	if !ok {
		if c.n.Add(1) > maxRelayClients {
			c.n.Add(-1)
			c.other.Add(1)
			return
		}
		var loaded bool
		if v, loaded = c.m.LoadOrStore(id, &relayClient{}); loaded {
			c.n.Add(-1) // another message of the same new client won
		}
	}
	rc := v.(*relayClient)
	rc.lastSeen.Store(now.UnixNano())
	rc.messages.Add(1)
	rc.bytes.Add(uint64(len(m.Payload())))
}

func (c *relayClients) list() []api.RelayClient {
	out := []api.RelayClient{}
	c.m.Range(func(k, v any) bool {
		rc := v.(*relayClient)
		out = append(out, api.RelayClient{Identifier: k.(string), LastSeen: time.Unix(0, rc.lastSeen.Load()).UTC(), Messages: rc.messages.Load(), Bytes: rc.bytes.Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Identifier < out[j].Identifier })
	return out
}

// relayRequest is what members send to the relay service.
type relayRequest struct {
	Op   string `json:"op"` // create, delete, list
	Name string `json:"name,omitempty"`
}

// serveRelays creates, deletes and lists relays. A member may hold a relay name its
// credential allows (relay=NAME or relay=*); a name held by one identity cannot be taken by
// another; the holder re-registers after reconnecting, which moves the relay to its new
// channel.
func (n *Node) serveRelays(ctx context.Context, q *rpc.Request) (any, error) {
	p := n.project.Load()
	if p == nil || !p.hub {
		return nil, errNoProject
	}
	peer, err := peerOf(q)
	if err != nil {
		return nil, err
	}
	var req relayRequest
	if err := q.Decode(&req); err != nil {
		return nil, err
	}
	attrs := peer.Attributes()
	if attrs[authority.AttrMember] != "true" || n.isRevoked(identity.Identifier(peer.Identifier())) {
		return nil, fmt.Errorf("%s is not a member of project %s", peer.Identifier(), p.name)
	}
	if req.Op == "list" {
		return n.relayList(), nil
	}
	if !validRelayName(req.Name) {
		return nil, fmt.Errorf("relay name %q: use letters, digits, '.', '_' and '-', at most 64", req.Name)
	}
	admin := attrs[authority.AttrAdmin] == "true"
	owner, err := n.state.RelayOwner(ctx, req.Name)
	if err != nil {
		return nil, err
	}
	if owner != "" && owner != peer.Identifier() && !admin {
		return nil, fmt.Errorf("relay %q is held by %s; choose another name", req.Name, owner)
	}
	switch req.Op {
	case "create":
		if a := attrs[authority.AttrRelay]; a != req.Name && a != "*" && !admin {
			return nil, fmt.Errorf("%s may not create relay %q: its credential allows relay %q; ask for a ticket made with --relay %s", peer.Identifier(), req.Name, a, req.Name)
		}
		if err := n.relayCapacity(peer.Identifier(), req.Name); err != nil {
			return nil, err
		}
		if err := n.state.SetRelayOwner(ctx, req.Name, peer.Identifier()); err != nil {
			return nil, err
		}
		ret := q.ReturnRoute()
		to := routing.MustRoute(ret.NextAddress()) // the hub's channel to the owner
		n.putRelay(req.Name, to, q.Flow, peer.Identifier())
		return api.Relay{Name: req.Name, Address: "/service/" + relayPrefix + req.Name, Owner: peer.Identifier()}, nil
	case "delete":
		n.dropRelay(req.Name)
		return nil, n.state.SetRelayOwner(ctx, req.Name, "")
	}
	return nil, fmt.Errorf("unknown relay operation %q", req.Op)
}

func validRelayName(s string) bool { return authority.ValidRelayName(s) }

// putRelay creates the relay worker, or points an existing one at its owner's new channel.
// What a relay forwards stays remote (routing.Relay): it reaches the owner's channel and the
// channels of the clients that used the relay, never a worker or a transport of the hub.
func (n *Node) putRelay(name string, to routing.Route, owner routing.FlowID, ownerID string) {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	if n.relays.m == nil {
		n.relays.m = map[string]*hubRelay{}
	}
	if r := n.relays.m[name]; r != nil {
		r.relay.Update(to, owner)
		r.owner = ownerID
		return
	}
	gate := &access.Gate{Resource: "relay " + name, Policy: n.policyFunc("relay", name), Log: n.log, Router: n.router}
	r := &hubRelay{owner: ownerID}
	admit := func(m *routing.Message) bool {
		if n.revokedSender(m, gate.Resource) || !gate.Admit(m) {
			return false
		}
		r.clients.note(m, n.cfg.Now())
		return true
	}
	r.relay = routing.NewRelay(n.router, relayPrefix+name, to, owner, admit)
	n.relays.m[name] = r
	n.router.Register(relayPrefix+name, r.relay, n.relays.flow)
	n.log.Info("relay registered", "name", name, "owner", ownerID)
}

func (n *Node) dropRelay(name string) {
	n.relays.mu.Lock()
	r := n.relays.m[name]
	delete(n.relays.m, name)
	n.relays.mu.Unlock()
	n.router.Unregister(relayPrefix + name)
	if r != nil {
		r.relay.Close() // its flow no longer reaches the owner's and clients' channels
	}
}

func (n *Node) relayList() []api.Relay {
	n.relays.mu.Lock()
	defer n.relays.mu.Unlock()
	out := make([]api.Relay, 0, len(n.relays.m))
	for name, r := range n.relays.m {
		out = append(out, api.Relay{Name: name, Address: "/service/" + relayPrefix + name, Owner: r.owner, Clients: r.clients.list()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// listRelays lists the relays at the hub: its own table on the hub itself (whose local
// API is not a secure channel the relay service could authenticate), else the hub's answer.
func (n *Node) listRelays(ctx context.Context) ([]api.Relay, error) {
	if p := n.project.Load(); p != nil && p.hub {
		return n.relayList(), nil
	}
	var rs []api.Relay
	if err := n.callHub(ctx, relaysWorker, relayRequest{Op: "list"}, &rs); err != nil {
		return nil, fmt.Errorf("relay list: %w", err)
	}
	return rs, nil
}
