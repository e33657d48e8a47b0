package authority

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/identity"
)

// Attributes the authority sets on every credential; members cannot be given other values.
const (
	AttrMember   = "project_member" // "true"
	AttrProject  = "project"        // the project's name
	AttrRelay    = "relay"          // a relay name the member may register, or "*"
	AttrEnroller = "enroller"       // "true": may create tickets and manage members
	AttrAdmin    = "admin"          // "true": the hub itself
)

// reserved attributes are set by the authority only.
var reserved = map[string]bool{AttrMember: true, AttrProject: true, AttrAdmin: true, "identifier": true}

// Defaults.
const (
	DefaultLifetime       = time.Hour        // of a credential: short, and refreshed at half-life
	DefaultTicketExpiry   = 10 * time.Minute // of an enrollment ticket
	DefaultTicketUses     = 1
	MaxCredentialLifetime = 7 * 24 * time.Hour
	// A ticket is a bearer secret: it lives at most a week and enrolls at most 1000 nodes,
	// so one that leaks cannot be redeemed for ever or by everyone.
	MaxTicketExpiry = 7 * 24 * time.Hour
	MaxTicketUses   = 1000
)

// Config configures an Authority.
type Config struct {
	Project  string
	Identity *identity.History     // the authority's (the hub's) identity
	Signer   identity.Signer       // its credential-signing purpose key
	Attested *identity.Attestation // Signer's attestation by Identity
	Store    Store
	Lifetime time.Duration    // of credentials; default DefaultLifetime
	Now      func() time.Time // default time.Now
}

// Authority is a project's membership authority: it keeps members and tickets and issues
// short-lived credentials to members.
type Authority struct {
	cfg     Config
	rotated atomic.Pointer[issuerKeys] // set by Reattest
}

// New returns an authority.
func New(cfg Config) (*Authority, error) {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime > MaxCredentialLifetime {
		return nil, fmt.Errorf("authority: credential lifetime %v is over the maximum of %v", cfg.Lifetime, MaxCredentialLifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authority{cfg: cfg}, nil
}

// Identifier returns the authority's identifier.
func (a *Authority) Identifier() identity.Identifier { return a.cfg.Identity.Identifier() }

// Lifetime returns the lifetime of the credentials it issues.
func (a *Authority) Lifetime() time.Duration { return a.cfg.Lifetime }

// Store returns the member store.
func (a *Authority) Store() Store { return a.cfg.Store }

// Issue returns a fresh credential for a member.
func (a *Authority) Issue(ctx context.Context, id identity.Identifier) (*credential.Bundle, error) {
	m, err := a.cfg.Store.Member(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s is not a member of project %s", id, a.cfg.Project)
	}
	if err != nil {
		return nil, err
	}
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrMember] = "true"
	attrs[AttrProject] = a.cfg.Project
	now := a.cfg.Now()
	return a.issue(id, attrs, now)
}

// RenewOwn re-issues the authority's own credential, last, with its attributes and without
// the store. The hub refreshes through Issue like any member and falls back to this when the
// store fails or hangs: its membership is not the store's to take away, and a hub whose
// credential lapsed would be dropped by every member, the whole project going dark one
// lifetime into a store outage.
func (a *Authority) RenewOwn(last *credential.Credential) (*credential.Bundle, error) {
	self := a.Identifier()
	if last.Subject() != self || last.Issuer() != self {
		return nil, errors.New("authority: only its own credential is renewed without the store")
	}
	now := a.cfg.Now()
	return a.issue(self, last.Attributes(), now)
}

// TicketOptions are what a ticket grants. Uses and ExpiresIn are nil for the defaults; a
// given value must be within bounds (CheckTicket), never silently replaced.
type TicketOptions struct {
	Attributes map[string]string `json:"attributes,omitempty"`
	Relay      string            `json:"relay,omitempty"`
	Enroller   bool              `json:"enroller,omitempty"`
	Uses       *int              `json:"uses,omitempty"`
	ExpiresIn  *time.Duration    `json:"expires_in,omitempty"`
}

// CheckTicket refuses ticket options that make no sense or exceed the bounds: uses from 1 to
// MaxTicketUses, a lifetime from 1s to MaxTicketExpiry, a relay name that relay create would
// accept (or "*"), and attributes a member may be given. The node checks a request with it
// before it goes to the hub, and the authority again, for requests made without the CLI.
func CheckTicket(o TicketOptions) error {
	if o.Uses != nil && (*o.Uses < 1 || *o.Uses > MaxTicketUses) {
		return fmt.Errorf("usage count %d: want from 1 to %d (--usage-count)", *o.Uses, MaxTicketUses)
	}
	if o.ExpiresIn != nil && (*o.ExpiresIn < time.Second || *o.ExpiresIn > MaxTicketExpiry) {
		return fmt.Errorf("expiry %v: want from 1s to %v (--expires-in)", *o.ExpiresIn, MaxTicketExpiry)
	}
	if o.Relay != "" && o.Relay != "*" && !ValidRelayName(o.Relay) {
		return fmt.Errorf("relay name %q: use letters, digits, '.', '_' and '-', at most 64, or * for any (--relay)", o.Relay)
	}
	if r, ok := o.Attributes[AttrRelay]; ok && r != "*" && !ValidRelayName(r) {
		return fmt.Errorf("attribute %s=%q: use letters, digits, '.', '_' and '-', at most 64, or * for any", AttrRelay, r)
	}
	return CheckAttributes(o.Attributes)
}

// ValidRelayName reports whether s may name a relay: letters, digits, '.', '_' and '-', at
// most 64. Tickets are checked by the same rule as relay create.
func ValidRelayName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var attrKey = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// CheckAttributes refuses attribute names a member may not be given.
func CheckAttributes(attrs map[string]string) error {
	for k, v := range attrs {
		if !attrKey.MatchString(k) {
			return fmt.Errorf("attribute name %q: use lower-case letters, digits, '_', '.', '-', starting with a letter", k)
		}
		if reserved[k] {
			return fmt.Errorf("attribute %q is set by the authority and cannot be given", k)
		}
		if len(v) > 1024 {
			return fmt.Errorf("attribute %q: value over 1024 bytes", k)
		}
	}
	return nil
}

// CreateTicket stores a ticket and returns its secret.
func (a *Authority) CreateTicket(ctx context.Context, by identity.Identifier, o TicketOptions) ([32]byte, time.Time, error) {
	var secret [32]byte
	if err := CheckTicket(o); err != nil {
		return secret, time.Time{}, fmt.Errorf("ticket: %w", err)
	}
	uses, expiresIn := DefaultTicketUses, DefaultTicketExpiry
	if o.Uses != nil {
		uses = *o.Uses
	}
	if o.ExpiresIn != nil {
		expiresIn = *o.ExpiresIn
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return secret, time.Time{}, err
	}
	expires := a.cfg.Now().Add(expiresIn)
	t := Ticket{
		SecretHash: sha256.Sum256(secret[:]),
		Attributes: o.Attributes,
		Relay:      o.Relay,
		Enroller:   o.Enroller,
		UsesLeft:   uses,
		Expires:    expires,
		CreatedBy:  by,
	}
	if err := a.cfg.Store.AddTicket(ctx, t); err != nil {
		return secret, time.Time{}, err
	}
	return secret, expires, nil
}

// Enroll redeems a ticket for id: it becomes a member with the ticket's attributes, and gets
// its first credential.
func (a *Authority) Enroll(ctx context.Context, id identity.Identifier, secret []byte) (*credential.Bundle, error) {
	if len(secret) != 32 {
		return nil, errors.New("enroll: malformed ticket secret")
	}
	t, err := a.cfg.Store.RedeemTicket(ctx, sha256.Sum256(secret), a.cfg.Now())
	switch {
	case errors.Is(err, ErrTicketUsed):
		return nil, errors.New("enroll: this ticket was already used; ask for a new one (adjacent project ticket)")
	case errors.Is(err, ErrTicketExpired):
		return nil, errors.New("enroll: this ticket has expired; ask for a new one (adjacent project ticket)")
	case errors.Is(err, ErrTicketUnknown):
		return nil, errors.New("enroll: this hub does not know the ticket")
	case err != nil:
		return nil, err
	}
	if err := a.checkEnroller(ctx, t.CreatedBy); err != nil {
		return nil, err
	}
	attrs := maps.Clone(t.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	if t.Relay != "" {
		attrs[AttrRelay] = t.Relay
	}
	if t.Enroller {
		attrs[AttrEnroller] = "true"
	}
	if old, err := a.cfg.Store.Member(ctx, id); err == nil {
		for k, v := range old.Attributes { // keep what the member had, the ticket's win
			if _, ok := attrs[k]; !ok {
				attrs[k] = v
			}
		}
	}
	m := Member{Identifier: id, Attributes: attrs, AddedBy: t.CreatedBy, Added: a.cfg.Now(), Ticket: t.SecretHash}
	if err := a.cfg.Store.PutMember(ctx, m); err != nil {
		return nil, err
	}
	return a.Issue(ctx, id)
}

// checkEnroller refuses a ticket whose maker is no longer a member allowed to make tickets,
// and deletes that maker's tickets: a ticket dies with its enroller, also when the member was
// deleted by another hub sharing the store, or the deletion of its tickets failed.
func (a *Authority) checkEnroller(ctx context.Context, by identity.Identifier) error {
	if by == a.Identifier() {
		return nil
	}
	m, err := a.cfg.Store.Member(ctx, by)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err == nil && (m.Attributes[AttrEnroller] == "true" || m.Attributes[AttrAdmin] == "true") {
		return nil
	}
	if _, err := a.cfg.Store.DeleteTickets(ctx, by); err != nil {
		return err
	}
	return fmt.Errorf("enroll: %w: the member %s who made it is no longer an enroller of project %s; ask for a new one (adjacent project ticket)", ErrEnrollerGone, by, a.cfg.Project)
}

// ErrEnrollerGone: the ticket's maker is no longer a member with the enroller attribute.
var ErrEnrollerGone = errors.New("this ticket is void")

// AddMember adds or replaces a member directly (no ticket).
func (a *Authority) AddMember(ctx context.Context, by, id identity.Identifier, attrs map[string]string, admin bool) error {
	if !admin {
		if err := CheckAttributes(attrs); err != nil {
			return err
		}
	}
	return a.cfg.Store.PutMember(ctx, Member{Identifier: id, Attributes: attrs, AddedBy: by, Added: a.cfg.Now()})
}

// revocationMargin is added to a revocation beyond the credential lifetime, for a refresh
// that read the member just before it was deleted and issued just after.
const revocationMargin = time.Minute

// Revoke deletes member id and the tickets it made, and records its revocation until the
// last credential it could hold has expired. It reports whether id was a member.
func (a *Authority) Revoke(ctx context.Context, id identity.Identifier) (Revocation, bool, error) {
	now := a.cfg.Now()
	r := Revocation{Identifier: id, Revoked: now, Until: now.Add(a.cfg.Lifetime + revocationMargin)}
	m, err := a.cfg.Store.Member(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Revocation{}, false, nil
	}
	if err != nil {
		return Revocation{}, false, err
	}
	ok, err := a.cfg.Store.RevokeMember(ctx, r)
	if err != nil || !ok {
		return Revocation{}, ok, err
	}
	// A ticket dies with its maker.
	if _, err := a.cfg.Store.DeleteTickets(ctx, id); err != nil {
		return r, true, fmt.Errorf("authority: delete the tickets of %s: %w", id, err)
	}
	// And the ticket the member enrolled with dies with it: else the member enrolls again
	// with it at once, under a fresh identity.
	if m.Ticket != ([32]byte{}) {
		if r.TicketUsesVoided, err = a.cfg.Store.VoidTicket(ctx, m.Ticket); err != nil {
			return r, true, fmt.Errorf("authority: void the ticket %s enrolled with: %w", id, err)
		}
	}
	return r, true, nil
}

// AttributesChanged returns an event, signed like Announce's, that tells member id to fetch
// a fresh credential now: its attributes changed.
func (a *Authority) AttributesChanged(id identity.Identifier) (*event.Signed, error) {
	now := a.cfg.Now()
	return a.sign(event.Event{Kind: event.KindAttributes, Subject: id, Issued: now, Until: now.Add(event.MaxAge)})
}

// Revocations returns the revocations in force now, which the hub enforces from its start.
func (a *Authority) Revocations(ctx context.Context) ([]Revocation, error) {
	return a.cfg.Store.Revocations(ctx, a.cfg.Now())
}

// Announce returns r as an event signed by the authority's credential-signing key, issued
// now: what members verify before they refuse r's subject.
func (a *Authority) Announce(r Revocation) (*event.Signed, error) {
	return a.sign(event.Event{Kind: event.KindRevoked, Subject: r.Identifier, Issued: a.cfg.Now(), Until: r.Until})
}

// sign signs e for the project with the current credential-signing key (the one a
// rotation put in place, if any).
func (a *Authority) sign(e event.Event) (*event.Signed, error) {
	k := a.keys()
	e.Project = a.cfg.Project
	return event.Sign(k.signer, k.attested, a.Identifier(), e)
}
