package hub

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/access"
	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/routing"
)

// RelayPrefix starts the local address of every relay at a hub: forward_to_NAME.
const RelayPrefix = "forward_to_"

// RelayOwners remembers who holds each relay name, across restarts (the node's state
// database).
type RelayOwners interface {
	RelayOwner(ctx context.Context, name string) (string, error)
	SetRelayOwner(ctx context.Context, name, owner string) error // "" frees the name
}

// RelayConfig configures a RelayService.
type RelayConfig struct {
	Project string
	Router  *routing.Router
	Owners  RelayOwners
	// Policy returns the current policy of the relay name, which clients must satisfy.
	Policy func(name string) *policy.Policy
	// Revoked reports whether id's membership was revoked.
	Revoked func(id identity.Identifier) bool
	// SenderRevoked reports whether m comes from a revoked member, counting the refusal at
	// resource.
	SenderRevoked func(m *routing.Message, resource string) bool
	// OverCap counts and logs a relay refused to owner because it holds PerIdentity.
	OverCap func(owner string, limit int)
	// PerIdentity caps the relays one identity holds. Default 16.
	PerIdentity int
	Logger      *slog.Logger     // default slog.Default()
	Now         func() time.Time // default time.Now
}

// RelayService is the hub's relay service: members create, delete and list relays; each
// relay forwards between its owner and the clients its policy admits, and remembers those
// clients for relay list and status.
type RelayService struct {
	cfg RelayConfig

	mu     sync.Mutex
	relays map[string]*hubRelay
	flow   routing.FlowID // the listener flow relays are opened to
}

// NewRelayService returns the service of cfg.
func NewRelayService(cfg RelayConfig) *RelayService {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PerIdentity <= 0 {
		cfg.PerIdentity = 16
	}
	if cfg.Revoked == nil {
		cfg.Revoked = func(identity.Identifier) bool { return false }
	}
	if cfg.SenderRevoked == nil {
		cfg.SenderRevoked = func(*routing.Message, string) bool { return false }
	}
	if cfg.OverCap == nil {
		cfg.OverCap = func(string, int) {}
	}
	return &RelayService{cfg: cfg, relays: map[string]*hubRelay{}}
}

// Open registers the relays again behind the listener whose flow is flow (after the
// listener restarted); relays created later are opened to it too.
func (s *RelayService) Open(flow routing.FlowID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, r := range s.relays {
		s.cfg.Router.Unregister(RelayPrefix + name)
		if err := s.cfg.Router.Register(RelayPrefix+name, r.relay, flow); err != nil {
			return err
		}
	}
	s.flow = flow
	return nil
}

// From is where a request came from: the hub's channel to the caller (the first hop of
// the request's return route) and the flow it came on.
type From struct {
	Channel routing.Address
	Flow    routing.FlowID
}

// Handle is the rpc.Handler of the relays worker.
func (s *RelayService) Handle(ctx context.Context, q *rpc.Request) (any, error) {
	var e relayEnvelope
	if err := q.Decode(&e); err != nil {
		return nil, err
	}
	var from From
	if ret := q.ReturnRoute(); ret.Len() > 0 {
		from = From{Channel: ret.NextAddress(), Flow: q.Flow}
	}
	return s.Serve(ctx, q.Peer, from, e.req)
}

// Serve answers req from peer, a member. A member may hold a relay name its credential
// allows (relay=NAME or relay=*); a name held by one identity cannot be taken by another
// (but by the admin); the holder re-registers after reconnecting, which moves the relay to
// its new channel.
func (s *RelayService) Serve(ctx context.Context, peer routing.Peer, from From, req RelayRequest) (any, error) {
	c, ok := peer.(Caller)
	if !ok || peer == nil {
		return nil, ErrNoChannel
	}
	attrs := c.Attributes()
	id := c.Identifier()
	if attrs[authority.AttrMember] != "true" || s.cfg.Revoked(identity.Identifier(id)) {
		return nil, fmt.Errorf("%s is not a member of project %s", id, s.cfg.Project)
	}
	var name string
	switch r := req.(type) {
	case RelayList:
		return s.List(), nil
	case RelayCreate:
		name = r.Name
	case RelayDelete:
		name = r.Name
	default:
		return nil, fmt.Errorf("unknown relay operation %q", req.Op())
	}
	if !authority.ValidRelayName(name) {
		return nil, fmt.Errorf("relay name %q: use letters, digits, '.', '_' and '-', at most 64", name)
	}
	admin := attrs[authority.AttrAdmin] == "true"
	owner, err := s.cfg.Owners.RelayOwner(ctx, name)
	if err != nil {
		return nil, err
	}
	if owner != "" && owner != id && !admin {
		return nil, fmt.Errorf("relay %q is held by %s; choose another name", name, owner)
	}
	if _, ok := req.(RelayDelete); ok {
		s.Drop(name)
		return nil, s.cfg.Owners.SetRelayOwner(ctx, name, "")
	}
	if a := attrs[authority.AttrRelay]; a != name && a != "*" && !admin {
		return nil, fmt.Errorf("%s may not create relay %q: its credential allows relay %q; ask for a ticket made with --relay %s", id, name, a, name)
	}
	if err := s.capacity(id, name); err != nil {
		return nil, err
	}
	if from.Channel.Value == "" {
		return nil, ErrNoChannel
	}
	if err := s.cfg.Owners.SetRelayOwner(ctx, name, id); err != nil {
		return nil, err
	}
	s.put(name, routing.MustRoute(from.Channel), from.Flow, id)
	return api.Relay{Name: name, Address: "/service/" + RelayPrefix + name, Owner: id}, nil
}

// capacity refuses a new relay name for owner when it holds PerIdentity already;
// registering again a relay it holds is always allowed.
func (s *RelayService) capacity(owner, name string) error {
	s.mu.Lock()
	held := 0
	for other, r := range s.relays {
		if other == name && r.owner == owner {
			s.mu.Unlock()
			return nil
		}
		if r.owner == owner {
			held++
		}
	}
	s.mu.Unlock()
	if held < s.cfg.PerIdentity {
		return nil
	}
	s.cfg.OverCap(owner, s.cfg.PerIdentity)
	return fmt.Errorf("refused: capacity: %s holds %d relays at this hub, the most one identity may; delete one first (adjacent relay delete NAME)", owner, held)
}

// put creates the relay worker, or points an existing one at its owner's new channel.
// What a relay forwards stays remote (routing.Relay): it reaches the owner's channel and the
// channels of the clients that used the relay, never a worker or a transport of the hub.
func (s *RelayService) put(name string, to routing.Route, owner routing.FlowID, ownerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.relays[name]; r != nil {
		r.relay.Update(to, owner)
		r.owner = ownerID
		return
	}
	gate := &access.Gate{Resource: "relay " + name, Policy: func() *policy.Policy { return s.cfg.Policy(name) }, Log: s.cfg.Logger, Router: s.cfg.Router}
	r := &hubRelay{owner: ownerID}
	admit := func(m *routing.Message) bool {
		if s.cfg.SenderRevoked(m, gate.Resource) || !gate.Admit(m) {
			return false
		}
		r.clients.note(m, s.cfg.Now())
		return true
	}
	r.relay = routing.NewRelay(s.cfg.Router, RelayPrefix+name, to, owner, admit)
	s.relays[name] = r
	s.cfg.Router.Register(RelayPrefix+name, r.relay, s.flow)
	s.cfg.Logger.Info("relay registered", "name", name, "owner", ownerID)
}

// Drop closes the relay name, if there is one.
func (s *RelayService) Drop(name string) {
	s.mu.Lock()
	r := s.relays[name]
	delete(s.relays, name)
	s.mu.Unlock()
	s.cfg.Router.Unregister(RelayPrefix + name)
	if r != nil {
		r.relay.Close() // its flow no longer reaches the owner's and clients' channels
	}
}

// DropOwnedBy closes the relays id holds: its membership was revoked.
func (s *RelayService) DropOwnedBy(id identity.Identifier) {
	for _, r := range s.List() {
		if r.Owner == string(id) {
			s.cfg.Logger.Info("dropping the relay of a revoked member", "relay", r.Name, "owner", id)
			s.Drop(r.Name)
		}
	}
}

// List returns the relays with their owners and clients, by name.
func (s *RelayService) List() []api.Relay {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.Relay, 0, len(s.relays))
	for name, r := range s.relays {
		out = append(out, api.Relay{Name: name, Address: "/service/" + RelayPrefix + name, Owner: r.owner, Clients: r.clients.list()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type hubRelay struct {
	relay   *routing.Relay
	owner   string
	clients relayClients
}

// MaxRelayClients caps the clients a relay remembers; later ones are only counted.
const MaxRelayClients = 256

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
		if c.n.Add(1) > MaxRelayClients {
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
