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

// TicketOptions are what a ticket grants.
type TicketOptions struct {
	Attributes map[string]string `json:"attributes,omitempty"`
	Relay      string            `json:"relay,omitempty"`
	Enroller   bool              `json:"enroller,omitempty"`
	Uses       int               `json:"uses,omitempty"`
	ExpiresIn  time.Duration     `json:"expires_in,omitempty"`
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
	if err := CheckAttributes(o.Attributes); err != nil {
		return secret, time.Time{}, err
	}
	if o.Uses <= 0 {
		o.Uses = DefaultTicketUses
	}
	if o.ExpiresIn <= 0 {
		o.ExpiresIn = DefaultTicketExpiry
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return secret, time.Time{}, err
	}
	expires := a.cfg.Now().Add(o.ExpiresIn)
	t := Ticket{
		SecretHash: sha256.Sum256(secret[:]),
		Attributes: o.Attributes,
		Relay:      o.Relay,
		Enroller:   o.Enroller,
		UsesLeft:   o.Uses,
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
	m := Member{Identifier: id, Attributes: attrs, AddedBy: t.CreatedBy, Added: a.cfg.Now()}
	if err := a.cfg.Store.PutMember(ctx, m); err != nil {
		return nil, err
	}
	return a.Issue(ctx, id)
}

// AddMember adds or replaces a member directly (no ticket).
func (a *Authority) AddMember(ctx context.Context, by, id identity.Identifier, attrs map[string]string, admin bool) error {
	if !admin {
		if err := CheckAttributes(attrs); err != nil {
			return err
		}
	}
	return a.cfg.Store.PutMember(ctx, Member{Identifier: id, Attributes: attrs, AddedBy: by, Added: a.cfg.Now()})
}
