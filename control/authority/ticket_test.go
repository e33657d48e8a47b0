package authority_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/sqlitestore"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/control/identity"
)

// newAuthority returns an authority on a fresh SQLite store.
func newAuthority(t *testing.T) *authority.Authority {
	t.Helper()
	now := time.Now()
	key := signer{ed25519.NewKeyFromSeed(make([]byte, 32))}
	h, err := identity.New(key, now)
	if err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(key, h.Identifier(), identity.PurposeCredentialSigning, key.Public(), now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "authority.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := authority.New(authority.Config{Project: "acme", Identity: h, Signer: key, Attested: att, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ptr[T any](v T) *T { return &v }

// TestCreateTicketRefusesNonsense: the authority itself refuses what the CLI refuses, so a
// request crafted without the CLI gets no unbounded or silently defaulted ticket.
func TestCreateTicketRefusesNonsense(t *testing.T) {
	a := newAuthority(t)
	for _, tt := range []struct {
		name string
		o    authority.TicketOptions
		want string // "" for accepted
	}{
		{"defaults", authority.TicketOptions{}, ""},
		{"bounds", authority.TicketOptions{Uses: ptr(authority.MaxTicketUses), ExpiresIn: ptr(authority.MaxTicketExpiry)}, ""},
		{"any relay", authority.TicketOptions{Relay: "*"}, ""},
		{"zero uses", authority.TicketOptions{Uses: ptr(0)}, "usage count 0"},
		{"negative uses", authority.TicketOptions{Uses: ptr(-3)}, "usage count -3"},
		{"too many uses", authority.TicketOptions{Uses: ptr(authority.MaxTicketUses + 1)}, "usage count 1001: want from 1 to 1000"},
		{"zero expiry", authority.TicketOptions{ExpiresIn: ptr(time.Duration(0))}, "expiry 0s"},
		{"negative expiry", authority.TicketOptions{ExpiresIn: ptr(-time.Minute)}, "expiry -1m0s"},
		{"long expiry", authority.TicketOptions{ExpiresIn: ptr(authority.MaxTicketExpiry + time.Second)}, "want from 1s to 168h0m0s"},
		{"bad relay", authority.TicketOptions{Relay: "bad name!"}, `relay name "bad name!"`},
		{"bad relay attribute", authority.TicketOptions{Attributes: map[string]string{"relay": "a/b"}}, `attribute relay="a/b"`},
		{"reserved attribute", authority.TicketOptions{Attributes: map[string]string{"admin": "true"}}, "set by the authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := a.CreateTicket(t.Context(), a.Identifier(), tt.o)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CreateTicket(%+v) = %v, want a ticket", tt.o, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CreateTicket(%+v) = %v, want an error containing %q", tt.o, err, tt.want)
			}
		})
	}
}

// TestTicketOfFormerEnrollerVoid: a ticket made by an enroller is refused, and deleted, once the
// enroller is no longer a member, or no longer an enroller; the authority's own tickets
// stay good.
func TestTicketOfFormerEnrollerVoid(t *testing.T) {
	a := newAuthority(t)
	ctx := t.Context()
	enroller := storetest.ID(1)
	if err := a.AddMember(ctx, a.Identifier(), enroller, map[string]string{authority.AttrEnroller: "true"}, false); err != nil {
		t.Fatal(err)
	}
	mk := func(by identity.Identifier) [32]byte {
		s, _, err := a.CreateTicket(ctx, by, authority.TicketOptions{Uses: ptr(5)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first, second, own := mk(enroller), mk(enroller), mk(a.Identifier())
	if _, err := a.Enroll(ctx, storetest.ID(2), first[:]); err != nil {
		t.Fatalf("Enroll with a live enroller's ticket: %v", err)
	}
	// No longer an enroller: its tickets are void.
	if err := a.AddMember(ctx, a.Identifier(), enroller, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enroll(ctx, storetest.ID(3), first[:]); !errors.Is(err, authority.ErrEnrollerGone) {
		t.Errorf("Enroll after the maker lost the enroller attribute = %v, want %v", err, authority.ErrEnrollerGone)
	}
	// And deleted: a second try does not find it.
	if _, err := a.Store().RedeemTicket(ctx, sha256.Sum256(first[:]), time.Now()); !errors.Is(err, authority.ErrTicketUnknown) {
		t.Errorf("the void ticket is still stored: RedeemTicket = %v, want %v", err, authority.ErrTicketUnknown)
	}
	if _, err := a.Store().RedeemTicket(ctx, sha256.Sum256(second[:]), time.Now()); !errors.Is(err, authority.ErrTicketUnknown) {
		t.Errorf("the enroller's other ticket is still stored: RedeemTicket = %v, want %v", err, authority.ErrTicketUnknown)
	}
	// Deleting a member deletes its tickets at once.
	if err := a.AddMember(ctx, a.Identifier(), enroller, map[string]string{authority.AttrEnroller: "true"}, false); err != nil {
		t.Fatal(err)
	}
	third := mk(enroller)
	if _, ok, err := a.Revoke(ctx, enroller); !ok || err != nil {
		t.Fatalf("Revoke = %v, %v", ok, err)
	}
	if _, err := a.Store().RedeemTicket(ctx, sha256.Sum256(third[:]), time.Now()); !errors.Is(err, authority.ErrTicketUnknown) {
		t.Errorf("a deleted member's ticket: RedeemTicket = %v, want %v", err, authority.ErrTicketUnknown)
	}
	if _, err := a.Enroll(ctx, storetest.ID(4), own[:]); err != nil {
		t.Errorf("Enroll with the authority's own ticket: %v", err)
	}
}

// TestDeletedMemberCannotRejoinWithItsTicket: a member deleted from the project cannot enroll
// again, under a fresh identity, with the multi-use ticket it enrolled with: deleting it takes
// the ticket's remaining uses, and says how many. Another member's ticket stays good.
func TestDeletedMemberCannotRejoinWithItsTicket(t *testing.T) {
	a := newAuthority(t)
	ctx := t.Context()
	mk := func() [32]byte {
		s, _, err := a.CreateTicket(ctx, a.Identifier(), authority.TicketOptions{Uses: ptr(10)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	shared, other := mk(), mk()
	thief := storetest.ID(1)
	if _, err := a.Enroll(ctx, thief, shared[:]); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if _, err := a.Enroll(ctx, storetest.ID(2), other[:]); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	r, ok, err := a.Revoke(ctx, thief)
	if !ok || err != nil {
		t.Fatalf("Revoke = %v, %v", ok, err)
	}
	if r.TicketUsesVoided != 9 {
		t.Errorf("Revoke voided %d uses of the member's ticket, want 9", r.TicketUsesVoided)
	}
	if _, err := a.Enroll(ctx, storetest.ID(3), shared[:]); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("Enroll with the deleted member's ticket, fresh identity = %v, want it refused as used", err)
	}
	if _, err := a.Enroll(ctx, storetest.ID(4), other[:]); err != nil {
		t.Errorf("Enroll with another member's ticket: %v", err)
	}
}
