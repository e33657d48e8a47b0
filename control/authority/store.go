package authority

import (
	"context"
	"errors"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
)

// Errors a Store returns; callers test them with errors.Is.
var (
	// ErrNotFound: there is no member with that identifier.
	ErrNotFound = errors.New("no such member")
	// ErrTicketUnknown: no ticket's secret hashes to the given hash.
	ErrTicketUnknown = errors.New("unknown ticket")
	// ErrTicketUsed: the ticket has no uses left.
	ErrTicketUsed = errors.New("ticket already used")
	// ErrTicketExpired: the ticket's expiry has passed.
	ErrTicketExpired = errors.New("ticket expired")
	// ErrTicketExists: a ticket with the same secret hash is already stored.
	ErrTicketExists = errors.New("ticket already exists")
)

// Member is a project member: an identity and the attributes its credentials carry.
type Member struct {
	Identifier identity.Identifier
	Attributes map[string]string
	AddedBy    identity.Identifier // who added it: an enroller, or the authority itself
	Added      time.Time
	// Ticket is the SHA-256 of the secret of the ticket the member enrolled with (zero if it
	// was added otherwise), so that deleting the member voids that ticket too.
	Ticket [32]byte
}

// Ticket is a stored enrollment ticket. Only the SHA-256 of its secret is kept, so the store
// cannot hand out working tickets.
type Ticket struct {
	SecretHash [32]byte
	Attributes map[string]string // given to whoever redeems it
	Relay      string            // a relay name the member may register, or ""
	Enroller   bool              // the member may create tickets and manage members
	UsesLeft   int
	Expires    time.Time
	CreatedBy  identity.Identifier
}

// Revocation records a deleted member, refused until its credentials have expired.
type Revocation struct {
	Identifier identity.Identifier
	Revoked    time.Time // when the member was deleted
	Until      time.Time // refuse it until then: the last credential it could hold expires
	// TicketUsesVoided is how many uses Authority.Revoke took from the ticket the member
	// enrolled with (not stored).
	TicketUsesVoided int
}

// Store keeps an authority's members, tickets and revocations. Implementations are safe for concurrent
// use. Times are kept to the microsecond (truncated) and may come back in another location;
// compare them with time.Time.Equal. Attributes come back as a non-nil map.
type Store interface {
	// PutMember inserts m, or replaces the member with the same identifier. A member put
	// back is no longer revoked: PutMember removes its revocation.
	PutMember(ctx context.Context, m Member) error
	// Member returns the member with identifier id, or ErrNotFound.
	Member(ctx context.Context, id identity.Identifier) (Member, error)
	// Members returns every member, sorted by identifier.
	Members(ctx context.Context) ([]Member, error)
	// DeleteMember deletes the member with identifier id, and reports whether there was one.
	DeleteMember(ctx context.Context, id identity.Identifier) (bool, error)
	// RevokeMember deletes the member r.Identifier and records r, in one transaction, and
	// reports whether there was a member; without one it records nothing. A revocation of the
	// same identifier is replaced; revocations that ended by r.Revoked are forgotten.
	RevokeMember(ctx context.Context, r Revocation) (bool, error)
	// Revocations returns the revocations still in force at now (Until after now), sorted
	// by identifier.
	Revocations(ctx context.Context, now time.Time) ([]Revocation, error)
	// AddTicket stores t; ErrTicketExists if a ticket with its secret hash is already stored.
	AddTicket(ctx context.Context, t Ticket) error
	// RedeemTicket atomically uses one use of the ticket whose secret hashes to h, and
	// returns it with the uses left after this one. It returns ErrTicketUnknown if there is
	// no such ticket, ErrTicketUsed if its uses are exhausted, and ErrTicketExpired if now is
	// not before its expiry (a ticket both used up and expired is ErrTicketUsed). Of any
	// number of concurrent redeemers, also in other processes sharing the database, at most
	// UsesLeft succeed.
	RedeemTicket(ctx context.Context, h [32]byte, now time.Time) (Ticket, error)
	// DeleteTickets deletes every ticket made by createdBy, used or not, and returns how
	// many there were: a ticket dies with its enroller.
	DeleteTickets(ctx context.Context, createdBy identity.Identifier) (int, error)
	// VoidTicket takes every use left from the ticket whose secret hashes to h, and returns
	// how many it had (0 also when there is no such ticket): a ticket dies with the member
	// that enrolled with it.
	VoidTicket(ctx context.Context, h [32]byte) (int, error)
	// Close releases the store. It is idempotent.
	Close() error
}
