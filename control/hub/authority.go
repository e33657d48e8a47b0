package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/routing"
)

// Caller is the authenticated peer of a request and what its credential says (a
// trust.Peer in the node).
type Caller interface {
	Identifier() string
	Attributes() map[string]string
	Expires() time.Time // zero without a credential
}

// Revoked is the node's table of revoked members, which the node enforces on every
// channel, portal and relay.
type Revoked interface {
	// Until reports until when id is refused, if it is.
	Until(id identity.Identifier) (time.Time, bool)
	// Range calls f for each revoked member until f returns false.
	Range(f func(id identity.Identifier, until time.Time) bool)
	// Enforce refuses id until then: its channels close, its relays go.
	Enforce(id identity.Identifier, until time.Time)
	// Lift forgets id's revocation: it is a member again.
	Lift(id identity.Identifier)
}

// Members reaches the members connected to the hub.
type Members interface {
	// Announce sends the control event b to every connected member of the project but one.
	Announce(b []byte, except identity.Identifier)
	// Tell sends the control event b to member id on its channels to the hub.
	Tell(id identity.Identifier, b []byte)
}

// AuthorityConfig configures an AuthorityService.
type AuthorityConfig struct {
	Project   string
	Public    string // the hub's route text that members dial, put in tickets
	Authority *authority.Authority
	// History returns the authority's newest identity history, put in tickets.
	History func() *identity.History
	// Known returns the longer history of a member that rotated its identity, or nil.
	Known   func(identity.Identifier) *identity.History
	Revoked Revoked
	Members Members
	Logger  *slog.Logger     // default slog.Default()
	Now     func() time.Time // default time.Now
}

// AuthorityService is the hub's authority service: it answers members' requests and runs
// the authority's side of revocations (loading, reloading from a shared store, announcing).
type AuthorityService struct {
	cfg AuthorityConfig
	// membership serialises changes of members with reloads of the revocations, so that a
	// reload never undoes a change it did not read.
	membership sync.Mutex
	signed     sync.Map // identity.Identifier -> signedRevocation, the last signed for it
}

// NewAuthorityService returns the service of cfg.
func NewAuthorityService(cfg AuthorityConfig) *AuthorityService {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Known == nil {
		cfg.Known = func(identity.Identifier) *identity.History { return nil }
	}
	return &AuthorityService{cfg: cfg}
}

// Authority returns the authority the service runs.
func (s *AuthorityService) Authority() *authority.Authority { return s.cfg.Authority }

// Handle is the rpc.Handler of the authority worker.
func (s *AuthorityService) Handle(ctx context.Context, q *rpc.Request) (any, error) {
	var e authorityEnvelope
	if err := q.Decode(&e); err != nil {
		return nil, err
	}
	return s.Serve(ctx, q.Peer, e.req)
}

// ErrNoChannel refuses a request that did not come through a secure channel.
var ErrNoChannel = errors.New("requests to the authority must come through a secure channel")

// Serve answers req from peer: enrollment to anyone, credentials and revocations to
// members, tickets and member management to enrollers.
func (s *AuthorityService) Serve(ctx context.Context, peer routing.Peer, req AuthorityRequest) (any, error) {
	c, ok := peer.(Caller)
	if !ok || peer == nil {
		return nil, ErrNoChannel
	}
	id := identity.Identifier(c.Identifier())
	switch r := req.(type) {
	case Enroll:
		return s.enroll(ctx, id, r)
	case Revocations:
		return s.revocationsFor(c, r.After)
	case Credential:
		if s.isRevoked(id) {
			return nil, fmt.Errorf("%s is no longer a member of project %s", id, s.cfg.Project)
		}
		b, err := s.cfg.Authority.Issue(ctx, id)
		if err != nil {
			return nil, err
		}
		return CredentialAnswer{Credential: b.Encode(), Project: s.cfg.Project}, nil
	}
	if !IsEnroller(c) {
		return nil, fmt.Errorf("%s may not %s: it needs the enroller attribute (a ticket made with --enroller)", id, req.Op())
	}
	return s.manage(ctx, id, req)
}

// Local runs an enroller's request as the hub itself, for the hub's own local API.
func (s *AuthorityService) Local(ctx context.Context, req AuthorityRequest) (any, error) {
	switch req.(type) {
	case Ticket, MemberList, MemberAdd, MemberDelete:
		return s.manage(ctx, s.cfg.Authority.Identifier(), req)
	}
	return nil, fmt.Errorf("the hub does not ask itself to %s", req.Op())
}

func (s *AuthorityService) manage(ctx context.Context, by identity.Identifier, req AuthorityRequest) (any, error) {
	switch r := req.(type) {
	case Ticket:
		return s.ticket(ctx, by, r.Options)
	case MemberList:
		return s.listMembers(ctx)
	case MemberAdd:
		return nil, s.addMember(ctx, by, r)
	case MemberDelete:
		return s.deleteMember(ctx, r.Member)
	}
	return nil, fmt.Errorf("unknown authority operation %q", req.Op())
}

// IsEnroller reports whether c may make tickets and manage members.
func IsEnroller(c Caller) bool {
	a := c.Attributes()
	return a[authority.AttrMember] == "true" && (a[authority.AttrEnroller] == "true" || a[authority.AttrAdmin] == "true")
}

// IsMember reports whether c holds a valid credential of project at now. A peer's
// attributes come only from credentials the project's authority signed.
func IsMember(c Caller, project string, now time.Time) bool {
	a := c.Attributes()
	exp := c.Expires()
	return a[authority.AttrMember] == "true" && a[authority.AttrProject] == project && !exp.IsZero() && now.Before(exp)
}

func (s *AuthorityService) isRevoked(id identity.Identifier) bool {
	until, ok := s.cfg.Revoked.Until(id)
	return ok && s.cfg.Now().Before(until)
}

func (s *AuthorityService) enroll(ctx context.Context, id identity.Identifier, r Enroll) (CredentialAnswer, error) {
	s.membership.Lock()
	b, err := s.cfg.Authority.Enroll(ctx, id, r.Secret[:])
	if err == nil {
		s.cfg.Revoked.Lift(id)
	}
	s.membership.Unlock()
	if err != nil {
		return CredentialAnswer{}, err
	}
	s.cfg.Logger.Info("member enrolled", "project", s.cfg.Project, "member", id)
	return CredentialAnswer{Credential: b.Encode(), Project: s.cfg.Project}, nil
}

// ticket creates a ticket and returns its text.
func (s *AuthorityService) ticket(ctx context.Context, by identity.Identifier, o authority.TicketOptions) (api.Ticket, error) {
	secret, expires, err := s.cfg.Authority.CreateTicket(ctx, by, o)
	if err != nil {
		return api.Ticket{}, err
	}
	t := ticket.Ticket{Project: s.cfg.Project, Hub: s.cfg.Public, Authority: s.cfg.History().Encode(), Secret: secret}
	return api.Ticket{Ticket: t.String(), Expires: expires}, nil
}

func (s *AuthorityService) listMembers(ctx context.Context) ([]api.Member, error) {
	ms, err := s.cfg.Authority.Store().Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.Member{Identifier: string(m.Identifier), Attributes: m.Attributes, AddedBy: string(m.AddedBy), Added: m.Added})
		if h := s.cfg.Known(m.Identifier); h != nil && h.Len() > 1 {
			out[len(out)-1].Changes = h.Len()
		}
	}
	return out, nil
}

func (s *AuthorityService) addMember(ctx context.Context, by identity.Identifier, r MemberAdd) error {
	s.membership.Lock()
	defer s.membership.Unlock()
	if err := s.cfg.Authority.AddMember(ctx, by, r.Member, r.Attributes, false); err != nil {
		return err
	}
	s.cfg.Revoked.Lift(r.Member)
	s.tellAttributesChanged(r.Member) // its live sessions are judged by the new attributes
	return nil
}

// tellAttributesChanged tells member id, on its own channels to this hub, to fetch a fresh
// credential now, in an event the authority signs (members act on no other).
func (s *AuthorityService) tellAttributesChanged(id identity.Identifier) {
	ev, err := s.cfg.Authority.AttributesChanged(id)
	if err != nil {
		s.cfg.Logger.Error("member not told of its new attributes; it gets them at its next refresh", "member", id, "err", err)
		return
	}
	s.cfg.Members.Tell(id, ev.Encode())
}

// deleteMember removes a member and records its revocation in the member store, has the
// node refuse it and tells every connected member to refuse it too.
func (s *AuthorityService) deleteMember(ctx context.Context, id identity.Identifier) (api.MemberDeleted, error) {
	if id == s.cfg.Authority.Identifier() {
		return api.MemberDeleted{}, errors.New("member delete: the hub cannot remove itself")
	}
	s.membership.Lock()
	defer s.membership.Unlock()
	r, ok, err := s.cfg.Authority.Revoke(ctx, id)
	if err != nil {
		return api.MemberDeleted{}, err
	}
	if !ok {
		return api.MemberDeleted{}, fmt.Errorf("member delete: %s is not a member of project %s", id, s.cfg.Project)
	}
	s.cfg.Logger.Info("member deleted", "project", s.cfg.Project, "member", id, "refused_until", r.Until, "ticket_uses_voided", r.TicketUsesVoided)
	s.cfg.Revoked.Enforce(id, r.Until)
	s.Announce(r)
	return api.MemberDeleted{Identifier: string(id), TicketUsesVoided: r.TicketUsesVoided}, nil
}

// Announce sends the signed revocation r to the members connected to this hub.
func (s *AuthorityService) Announce(r authority.Revocation) {
	ev, err := s.cfg.Authority.Announce(r)
	if err != nil {
		s.cfg.Logger.Error("revocation not announced to members; they refuse the member when its credential expires", "member", r.Identifier, "err", err)
		return
	}
	s.cfg.Members.Announce(ev.Encode(), r.Identifier)
}

// Load makes the hub refuse, from its start, the members its authority revoked.
func (s *AuthorityService) Load(ctx context.Context) error {
	rs, err := s.cfg.Authority.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("node: project %s: read the revoked members: %w; the hub does not start without them", s.cfg.Project, err)
	}
	for _, r := range rs {
		s.cfg.Revoked.Enforce(r.Identifier, r.Until)
	}
	return nil
}

// Reload makes the hub's revocations the stored ones again: it enforces and announces
// those this hub did not know, and forgets those that ended or were lifted (the member was
// added back). A store that fails or hangs changes nothing: what the hub knows stays
// refused.
func (s *AuthorityService) Reload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.membership.Lock()
	defer s.membership.Unlock()
	rs, err := s.cfg.Authority.Revocations(ctx)
	if err != nil {
		s.cfg.Logger.Warn("could not read the revoked members again; those known stay refused", "err", err)
		return
	}
	stored := make(map[identity.Identifier]bool, len(rs))
	for _, r := range rs {
		stored[r.Identifier] = true
		if old, ok := s.cfg.Revoked.Until(r.Identifier); ok && !old.Before(r.Until) {
			continue
		}
		s.cfg.Logger.Info("a member was revoked through the shared member store", "member", r.Identifier, "until", r.Until)
		s.cfg.Revoked.Enforce(r.Identifier, r.Until)
		s.Announce(r)
	}
	var lifted []identity.Identifier
	s.cfg.Revoked.Range(func(id identity.Identifier, _ time.Time) bool {
		if !stored[id] {
			lifted = append(lifted, id)
		}
		return true
	})
	for _, id := range lifted {
		s.cfg.Revoked.Lift(id)
		s.signed.Delete(id)
	}
}

// MaxRevocationsAnswer bounds the revocations a hub hands a member in one answer (a page),
// within rpc.MaxMessage; the member asks for the next page until it has them all.
const MaxRevocationsAnswer = 128

// revocationsFor answers a member that (re)connected with the revocations in force, each
// signed, so that it refuses them too without having heard the announcements. Only members
// are told.
// They come in pages of MaxRevocationsAnswer in identifier order, starting after after.
func (s *AuthorityService) revocationsFor(c Caller, after identity.Identifier) (RevocationsAnswer, error) {
	now := s.cfg.Now()
	if !IsMember(c, s.cfg.Project, now) || s.isRevoked(identity.Identifier(c.Identifier())) {
		return RevocationsAnswer{}, fmt.Errorf("%s is not a member of project %s", c.Identifier(), s.cfg.Project)
	}
	var rs []authority.Revocation
	s.cfg.Revoked.Range(func(id identity.Identifier, until time.Time) bool {
		if now.Before(until) && id > after {
			rs = append(rs, authority.Revocation{Identifier: id, Until: until})
		}
		return true
	})
	slices.SortFunc(rs, func(a, b authority.Revocation) int {
		return strings.Compare(string(a.Identifier), string(b.Identifier))
	})
	ans := RevocationsAnswer{Events: [][]byte{}}
	if len(rs) > MaxRevocationsAnswer {
		rs = rs[:MaxRevocationsAnswer]
		ans.Next = string(rs[len(rs)-1].Identifier)
	}
	for _, r := range rs {
		b, err := s.signedRevocation(r, now)
		if err != nil {
			return RevocationsAnswer{}, err
		}
		ans.Events = append(ans.Events, b)
	}
	return ans, nil
}

type signedRevocation struct {
	until time.Time
	at    time.Time
	b     []byte
}

// signedRevocation returns r signed, reusing a signature made less than half of
// event.MaxAge ago: members asking again and again cost the hub no signing.
func (s *AuthorityService) signedRevocation(r authority.Revocation, now time.Time) ([]byte, error) {
	if v, ok := s.signed.Load(r.Identifier); ok {
		if sr := v.(signedRevocation); sr.until.Equal(r.Until) && now.Sub(sr.at) < event.MaxAge/2 {
			return sr.b, nil
		}
	}
	ev, err := s.cfg.Authority.Announce(r)
	if err != nil {
		return nil, err
	}
	b := ev.Encode()
	s.signed.Store(r.Identifier, signedRevocation{until: r.Until, at: now, b: b})
	return b, nil
}
