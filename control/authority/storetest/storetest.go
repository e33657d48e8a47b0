package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"
)

// Run runs the conformance suite. open must return a new, empty store each time it is
// called; Run closes it.
func Run(t *testing.T, open func(t *testing.T) authority.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, authority.Store)
	}{
		{"MemberNotFound", testMemberNotFound},
		{"PutMember", testPutMember},
		{"ReplaceMember", testReplaceMember},
		{"Members", testMembers},
		{"DeleteMember", testDeleteMember},
		{"PutMemberRejectsBadIdentifier", testPutMemberRejectsBadIdentifier},
		{"Attributes", testAttributes},
		{"AddTicketTwice", testAddTicketTwice},
		{"RedeemTicket", testRedeemTicket},
		{"RedeemUnknownTicket", testRedeemUnknownTicket},
		{"TicketUses", testTicketUses},
		{"TicketExpiry", testTicketExpiry},
		{"UsedAndExpiredTicket", testUsedAndExpiredTicket},
		{"DeleteTickets", testDeleteTickets},
		{"MemberKeepsItsTicket", testMemberKeepsItsTicket},
		{"VoidTicket", testVoidTicket},
		{"RevokeMember", testRevokeMember},
		{"RevocationExpires", testRevocationExpires},
		{"PutMemberLiftsRevocation", testPutMemberLiftsRevocation},
		{"ConcurrentRedeem", func(t *testing.T, s authority.Store) { ConcurrentRedeem(t, s, s) }},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// ID returns a fixed, well-formed identifier for n.
func ID(n int) identity.Identifier {
	h := sha256.Sum256(fmt.Appendf(nil, "storetest identity %d", n))
	return identity.Identifier(fmt.Sprintf("I%x", h))
}

// SecretHash returns a fixed ticket secret hash for n.
func SecretHash(n int) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "storetest ticket %d", n))
}

// t0 has a sub-microsecond part, which stores drop.
var t0 = time.Date(2030, 6, 1, 12, 30, 45, 123456789, time.UTC)

func ctx(t *testing.T) context.Context { return t.Context() }

func member(n int, attrs map[string]string) authority.Member {
	return authority.Member{Identifier: ID(n), Attributes: attrs, AddedBy: ID(0), Added: t0.Add(time.Duration(n) * time.Second)}
}

// sameMember reports how got differs from want, or "".
func sameMember(got, want authority.Member) string {
	switch {
	case got.Identifier != want.Identifier:
		return fmt.Sprintf("Identifier %s, want %s", got.Identifier, want.Identifier)
	case !maps.Equal(got.Attributes, want.Attributes):
		return fmt.Sprintf("Attributes %q, want %q", got.Attributes, want.Attributes)
	case got.Attributes == nil:
		return "Attributes nil, want a map"
	case got.AddedBy != want.AddedBy:
		return fmt.Sprintf("AddedBy %s, want %s", got.AddedBy, want.AddedBy)
	case !got.Added.Equal(want.Added.Truncate(time.Microsecond)):
		return fmt.Sprintf("Added %v, want %v", got.Added, want.Added.Truncate(time.Microsecond))
	}
	return ""
}

func sameTicket(got, want authority.Ticket) string {
	switch {
	case got.SecretHash != want.SecretHash:
		return fmt.Sprintf("SecretHash %x, want %x", got.SecretHash, want.SecretHash)
	case !maps.Equal(got.Attributes, want.Attributes):
		return fmt.Sprintf("Attributes %q, want %q", got.Attributes, want.Attributes)
	case got.Attributes == nil:
		return "Attributes nil, want a map"
	case got.Relay != want.Relay:
		return fmt.Sprintf("Relay %q, want %q", got.Relay, want.Relay)
	case got.Enroller != want.Enroller:
		return fmt.Sprintf("Enroller %v, want %v", got.Enroller, want.Enroller)
	case got.UsesLeft != want.UsesLeft:
		return fmt.Sprintf("UsesLeft %d, want %d", got.UsesLeft, want.UsesLeft)
	case !got.Expires.Equal(want.Expires.Truncate(time.Microsecond)):
		return fmt.Sprintf("Expires %v, want %v", got.Expires, want.Expires.Truncate(time.Microsecond))
	case got.CreatedBy != want.CreatedBy:
		return fmt.Sprintf("CreatedBy %s, want %s", got.CreatedBy, want.CreatedBy)
	}
	return ""
}

func mustPut(t *testing.T, s authority.Store, m authority.Member) {
	t.Helper()
	if err := s.PutMember(ctx(t), m); err != nil {
		t.Fatalf("PutMember(%s): %v", m.Identifier, err)
	}
}

func mustAdd(t *testing.T, s authority.Store, tk authority.Ticket) {
	t.Helper()
	if err := s.AddTicket(ctx(t), tk); err != nil {
		t.Fatalf("AddTicket(%x): %v", tk.SecretHash, err)
	}
}

func testMemberNotFound(t *testing.T, s authority.Store) {
	if m, err := s.Member(ctx(t), ID(1)); !errors.Is(err, authority.ErrNotFound) {
		t.Errorf("Member(%s) = %+v, %v, want %v", ID(1), m, err, authority.ErrNotFound)
	}
	if m, err := s.Member(ctx(t), "not an identifier"); !errors.Is(err, authority.ErrNotFound) {
		t.Errorf("Member(not an identifier) = %+v, %v, want %v", m, err, authority.ErrNotFound)
	}
}

func testPutMember(t *testing.T, s authority.Store) {
	for _, want := range []authority.Member{
		member(1, map[string]string{"role": "analyst", "project_member": "true"}),
		member(2, nil),
		member(3, map[string]string{}),
		{Identifier: ID(4), Attributes: map[string]string{"a": "b"}}, // zero AddedBy and Added
	} {
		mustPut(t, s, want)
		got, err := s.Member(ctx(t), want.Identifier)
		if err != nil {
			t.Fatalf("Member(%s): %v", want.Identifier, err)
		}
		if want.Attributes == nil {
			want.Attributes = map[string]string{}
		}
		if d := sameMember(got, want); d != "" {
			t.Errorf("Member(%s): %s", want.Identifier, d)
		}
	}
}

func testReplaceMember(t *testing.T, s authority.Store) {
	mustPut(t, s, member(1, map[string]string{"role": "analyst", "team": "a"}))
	want := authority.Member{Identifier: ID(1), Attributes: map[string]string{"role": "admin"}, AddedBy: ID(9), Added: t0.Add(time.Hour)}
	mustPut(t, s, want)
	got, err := s.Member(ctx(t), ID(1))
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	if d := sameMember(got, want); d != "" {
		t.Errorf("Member after replacing: %s", d)
	}
	if all, err := s.Members(ctx(t)); err != nil || len(all) != 1 {
		t.Errorf("Members after replacing = %d members, %v, want 1", len(all), err)
	}
}

func testMembers(t *testing.T, s authority.Store) {
	all, err := s.Members(ctx(t))
	if err != nil || len(all) != 0 {
		t.Fatalf("Members of an empty store = %v, %v, want none", all, err)
	}
	want := map[identity.Identifier]authority.Member{}
	for _, n := range []int{5, 3, 8, 1, 2, 13, 21} {
		m := member(n, map[string]string{"n": fmt.Sprint(n)})
		want[m.Identifier] = m
		mustPut(t, s, m)
	}
	all, err = s.Members(ctx(t))
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(all) != len(want) {
		t.Fatalf("Members = %d members, want %d", len(all), len(want))
	}
	for i, m := range all {
		if i > 0 && all[i-1].Identifier >= m.Identifier {
			t.Errorf("Members not sorted: %s before %s", all[i-1].Identifier, m.Identifier)
		}
		if d := sameMember(m, want[m.Identifier]); d != "" {
			t.Errorf("Members()[%d]: %s", i, d)
		}
	}
}

func testDeleteMember(t *testing.T, s authority.Store) {
	mustPut(t, s, member(1, nil))
	mustPut(t, s, member(2, nil))
	if ok, err := s.DeleteMember(ctx(t), ID(1)); !ok || err != nil {
		t.Errorf("DeleteMember(%s) = %v, %v, want true, nil", ID(1), ok, err)
	}
	if ok, err := s.DeleteMember(ctx(t), ID(1)); ok || err != nil {
		t.Errorf("DeleteMember(%s) again = %v, %v, want false, nil", ID(1), ok, err)
	}
	if ok, err := s.DeleteMember(ctx(t), ID(3)); ok || err != nil {
		t.Errorf("DeleteMember(%s) never added = %v, %v, want false, nil", ID(3), ok, err)
	}
	if _, err := s.Member(ctx(t), ID(1)); !errors.Is(err, authority.ErrNotFound) {
		t.Errorf("Member after delete: %v, want %v", err, authority.ErrNotFound)
	}
	if _, err := s.Member(ctx(t), ID(2)); err != nil {
		t.Errorf("Member(%s) after deleting another: %v", ID(2), err)
	}
	if all, err := s.Members(ctx(t)); err != nil || len(all) != 1 || all[0].Identifier != ID(2) {
		t.Errorf("Members after delete = %v, %v, want only %s", all, err, ID(2))
	}
	// A deleted member can be added again.
	mustPut(t, s, member(1, map[string]string{"back": "yes"}))
	if got, err := s.Member(ctx(t), ID(1)); err != nil || got.Attributes["back"] != "yes" {
		t.Errorf("Member after adding again = %+v, %v", got, err)
	}
}

func testPutMemberRejectsBadIdentifier(t *testing.T, s authority.Store) {
	for _, id := range []identity.Identifier{"", "I", "alice", ID(1)[:64]} {
		if err := s.PutMember(ctx(t), authority.Member{Identifier: id}); err == nil {
			t.Errorf("PutMember(%q) = nil, want an error", id)
		}
	}
}

// unicodeAttrs are attributes that must survive storage unchanged.
var unicodeAttrs = map[string]string{
	"name":      "Zoë Ångström",
	"city":      "東京",
	"emoji":     "🚀👩🏽‍💻",
	"rtl":       "שלום",
	"quote":     `"quoted" and 'single' and \backslash\`,
	"json":      `{"a": [1, 2]}`,
	"control":   "tab\tnewline\nnul\x00end",
	"empty":     "",
	"sql":       "'; DROP TABLE members; --",
	"ключ":      "unicode names are stored as they are",
	"long":      string(make([]byte, 1024)),
	"surrogate": "\U0001F600",
}

func testAttributes(t *testing.T, s authority.Store) {
	want := member(1, unicodeAttrs)
	mustPut(t, s, want)
	got, err := s.Member(ctx(t), ID(1))
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	if d := sameMember(got, want); d != "" {
		t.Errorf("Member: %s", d)
	}
	tk := authority.Ticket{SecretHash: SecretHash(1), Attributes: unicodeAttrs, Relay: "bänk", UsesLeft: 2, Expires: t0, CreatedBy: ID(1)}
	mustAdd(t, s, tk)
	red, err := s.RedeemTicket(ctx(t), tk.SecretHash, t0.Add(-time.Minute))
	if err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	tk.UsesLeft--
	if d := sameTicket(red, tk); d != "" {
		t.Errorf("RedeemTicket: %s", d)
	}
	// The stored map is not the caller's.
	got.Attributes["name"] = "changed"
	if again, _ := s.Member(ctx(t), ID(1)); again.Attributes["name"] != unicodeAttrs["name"] {
		t.Errorf("changing a returned map changed the store")
	}
}

func testAddTicketTwice(t *testing.T, s authority.Store) {
	tk := authority.Ticket{SecretHash: SecretHash(1), UsesLeft: 1, Expires: t0, CreatedBy: ID(1)}
	mustAdd(t, s, tk)
	tk.UsesLeft = 10
	if err := s.AddTicket(ctx(t), tk); !errors.Is(err, authority.ErrTicketExists) {
		t.Errorf("AddTicket of the same secret hash = %v, want %v", err, authority.ErrTicketExists)
	}
	if _, err := s.RedeemTicket(ctx(t), tk.SecretHash, t0.Add(-time.Minute)); err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	if _, err := s.RedeemTicket(ctx(t), tk.SecretHash, t0.Add(-time.Minute)); !errors.Is(err, authority.ErrTicketUsed) {
		t.Errorf("RedeemTicket of a 1-use ticket re-added with 10 uses = %v, want %v", err, authority.ErrTicketUsed)
	}
}

func testRedeemTicket(t *testing.T, s authority.Store) {
	for i, tk := range []authority.Ticket{
		{SecretHash: SecretHash(1), Attributes: map[string]string{"role": "analyst"}, Relay: "postgres", Enroller: true, UsesLeft: 3, Expires: t0, CreatedBy: ID(1)},
		{SecretHash: SecretHash(2), UsesLeft: 1, Expires: t0.Add(time.Hour), CreatedBy: ID(2)},
	} {
		mustAdd(t, s, tk)
		got, err := s.RedeemTicket(ctx(t), tk.SecretHash, t0.Add(-time.Second))
		if err != nil {
			t.Fatalf("RedeemTicket %d: %v", i, err)
		}
		want := tk
		want.UsesLeft--
		if want.Attributes == nil {
			want.Attributes = map[string]string{}
		}
		if d := sameTicket(got, want); d != "" {
			t.Errorf("RedeemTicket %d: %s", i, d)
		}
	}
}

func testRedeemUnknownTicket(t *testing.T, s authority.Store) {
	if got, err := s.RedeemTicket(ctx(t), SecretHash(1), t0); !errors.Is(err, authority.ErrTicketUnknown) {
		t.Errorf("RedeemTicket of an empty store = %+v, %v, want %v", got, err, authority.ErrTicketUnknown)
	}
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(1), UsesLeft: 1, Expires: t0, CreatedBy: ID(1)})
	if got, err := s.RedeemTicket(ctx(t), SecretHash(2), t0.Add(-time.Hour)); !errors.Is(err, authority.ErrTicketUnknown) {
		t.Errorf("RedeemTicket of another hash = %+v, %v, want %v", got, err, authority.ErrTicketUnknown)
	}
}

func testTicketUses(t *testing.T, s authority.Store) {
	const uses = 3
	h := SecretHash(1)
	mustAdd(t, s, authority.Ticket{SecretHash: h, UsesLeft: uses, Expires: t0, CreatedBy: ID(1)})
	now := t0.Add(-time.Hour)
	for i := range uses {
		got, err := s.RedeemTicket(ctx(t), h, now)
		if err != nil {
			t.Fatalf("RedeemTicket use %d of %d: %v", i+1, uses, err)
		}
		if want := uses - i - 1; got.UsesLeft != want {
			t.Errorf("RedeemTicket use %d: UsesLeft %d, want %d", i+1, got.UsesLeft, want)
		}
	}
	for range 2 {
		if got, err := s.RedeemTicket(ctx(t), h, now); !errors.Is(err, authority.ErrTicketUsed) {
			t.Errorf("RedeemTicket after %d uses = %+v, %v, want %v", uses, got, err, authority.ErrTicketUsed)
		}
	}
	// A ticket stored with no uses is used.
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(2), UsesLeft: 0, Expires: t0, CreatedBy: ID(1)})
	if _, err := s.RedeemTicket(ctx(t), SecretHash(2), now); !errors.Is(err, authority.ErrTicketUsed) {
		t.Errorf("RedeemTicket of a 0-use ticket = %v, want %v", err, authority.ErrTicketUsed)
	}
}

func testTicketExpiry(t *testing.T, s authority.Store) {
	h := SecretHash(1)
	mustAdd(t, s, authority.Ticket{SecretHash: h, UsesLeft: 5, Expires: t0, CreatedBy: ID(1)})
	exp := t0.Truncate(time.Microsecond)
	for _, tc := range []struct {
		now  time.Time
		want error
	}{
		{exp.Add(-time.Microsecond), nil},
		{exp, authority.ErrTicketExpired},
		{exp.Add(time.Microsecond), authority.ErrTicketExpired},
		{exp.Add(24 * time.Hour), authority.ErrTicketExpired},
		{exp.Add(-time.Hour), nil}, // an earlier clock still sees a valid ticket
	} {
		got, err := s.RedeemTicket(ctx(t), h, tc.now)
		if !errors.Is(err, tc.want) || (tc.want != nil) != (err != nil) {
			t.Errorf("RedeemTicket at expiry%+v = %+v, %v, want %v", tc.now.Sub(exp), got, err, tc.want)
		}
	}
	// Failed redemptions use nothing: 5 uses, 2 succeeded above.
	for i := range 3 {
		if _, err := s.RedeemTicket(ctx(t), h, exp.Add(-time.Second)); err != nil {
			t.Errorf("RedeemTicket use %d: %v", i+3, err)
		}
	}
}

func testUsedAndExpiredTicket(t *testing.T, s authority.Store) {
	h := SecretHash(1)
	mustAdd(t, s, authority.Ticket{SecretHash: h, UsesLeft: 1, Expires: t0, CreatedBy: ID(1)})
	if _, err := s.RedeemTicket(ctx(t), h, t0.Add(-time.Second)); err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	if _, err := s.RedeemTicket(ctx(t), h, t0.Add(time.Hour)); !errors.Is(err, authority.ErrTicketUsed) {
		t.Errorf("RedeemTicket of a used and expired ticket = %v, want %v", err, authority.ErrTicketUsed)
	}
}

func testDeleteTickets(t *testing.T, s authority.Store) {
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(1), UsesLeft: 2, Expires: t0, CreatedBy: ID(1)})
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(2), UsesLeft: 1, Expires: t0, CreatedBy: ID(1)})
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(3), UsesLeft: 1, Expires: t0, CreatedBy: ID(2)})
	if _, err := s.RedeemTicket(ctx(t), SecretHash(2), t0.Add(-time.Hour)); err != nil { // a used one goes too
		t.Fatalf("RedeemTicket: %v", err)
	}
	if n, err := s.DeleteTickets(ctx(t), ID(1)); err != nil || n != 2 {
		t.Errorf("DeleteTickets(ID(1)) = %d, %v, want 2, nil", n, err)
	}
	for _, h := range [][32]byte{SecretHash(1), SecretHash(2)} {
		if _, err := s.RedeemTicket(ctx(t), h, t0.Add(-time.Hour)); !errors.Is(err, authority.ErrTicketUnknown) {
			t.Errorf("RedeemTicket of a deleted ticket = %v, want %v", err, authority.ErrTicketUnknown)
		}
	}
	if _, err := s.RedeemTicket(ctx(t), SecretHash(3), t0.Add(-time.Hour)); err != nil {
		t.Errorf("RedeemTicket of another enroller's ticket: %v", err)
	}
	if n, err := s.DeleteTickets(ctx(t), ID(3)); err != nil || n != 0 {
		t.Errorf("DeleteTickets of an enroller with none = %d, %v, want 0, nil", n, err)
	}
}

// testMemberKeepsItsTicket: the hash of the ticket a member enrolled with comes back with
// it, and is replaced when it is put again; a member without one has none.
func testMemberKeepsItsTicket(t *testing.T, s authority.Store) {
	m := member(1, nil)
	m.Ticket = SecretHash(7)
	mustPut(t, s, m)
	mustPut(t, s, member(2, nil))
	if got, err := s.Member(ctx(t), ID(1)); err != nil || got.Ticket != SecretHash(7) {
		t.Errorf("Member(1).Ticket = %x, %v, want %x", got.Ticket, err, SecretHash(7))
	}
	if got, err := s.Member(ctx(t), ID(2)); err != nil || got.Ticket != ([32]byte{}) {
		t.Errorf("Member(2).Ticket = %x, %v, want none", got.Ticket, err)
	}
	m.Ticket = SecretHash(8)
	mustPut(t, s, m)
	if all, err := s.Members(ctx(t)); err != nil || len(all) != 2 || all[0].Ticket != SecretHash(8) && all[1].Ticket != SecretHash(8) {
		t.Errorf("Members() after a put with another ticket = %v, %v, want one with %x", all, err, SecretHash(8))
	}
}

// testVoidTicket: a voided ticket has no uses left and says how many it had; voiding it again,
// or a ticket not stored, voids nothing.
func testVoidTicket(t *testing.T, s authority.Store) {
	mustAdd(t, s, authority.Ticket{SecretHash: SecretHash(1), UsesLeft: 5, Expires: t0, CreatedBy: ID(1)})
	if n, err := s.VoidTicket(ctx(t), SecretHash(1)); err != nil || n != 5 {
		t.Errorf("VoidTicket = %d, %v, want 5, nil", n, err)
	}
	if _, err := s.RedeemTicket(ctx(t), SecretHash(1), t0.Add(-time.Hour)); !errors.Is(err, authority.ErrTicketUsed) {
		t.Errorf("RedeemTicket of a voided ticket = %v, want %v", err, authority.ErrTicketUsed)
	}
	for _, h := range [][32]byte{SecretHash(1), SecretHash(2)} {
		if n, err := s.VoidTicket(ctx(t), h); err != nil || n != 0 {
			t.Errorf("VoidTicket(%x) = %d, %v, want 0, nil", h[:4], n, err)
		}
	}
}

func revocation(n int, revoked time.Time, lasts time.Duration) authority.Revocation {
	return authority.Revocation{Identifier: ID(n), Revoked: revoked, Until: revoked.Add(lasts)}
}

func sameRevocations(got, want []authority.Revocation) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d revocations %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Identifier != w.Identifier || !g.Revoked.Equal(w.Revoked.Truncate(time.Microsecond)) || !g.Until.Equal(w.Until.Truncate(time.Microsecond)) {
			return fmt.Sprintf("revocation %d = %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func mustRevocations(t *testing.T, s authority.Store, now time.Time) []authority.Revocation {
	t.Helper()
	rs, err := s.Revocations(ctx(t), now)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	return rs
}

// testRevokeMember: revoking deletes the member and records the revocation, which the store
// keeps (a hub restarting reads it back); revoking a non-member records nothing.
func testRevokeMember(t *testing.T, s authority.Store) {
	for _, n := range []int{1, 2, 3} {
		mustPut(t, s, member(n, nil))
	}
	if rs := mustRevocations(t, s, t0); len(rs) != 0 {
		t.Fatalf("Revocations of a new store = %v, want none", rs)
	}
	r3, r1 := revocation(3, t0, time.Hour), revocation(1, t0.Add(time.Second), 2*time.Hour)
	for _, r := range []authority.Revocation{r3, r1} {
		if ok, err := s.RevokeMember(ctx(t), r); !ok || err != nil {
			t.Fatalf("RevokeMember(%s) = %v, %v, want true, nil", r.Identifier, ok, err)
		}
		if _, err := s.Member(ctx(t), r.Identifier); !errors.Is(err, authority.ErrNotFound) {
			t.Errorf("Member(%s) after RevokeMember: %v, want %v", r.Identifier, err, authority.ErrNotFound)
		}
	}
	if d := sameRevocations(mustRevocations(t, s, t0.Add(time.Minute)), []authority.Revocation{r1, r3}); d != "" {
		t.Errorf("Revocations: %s", d)
	}
	if _, err := s.Member(ctx(t), ID(2)); err != nil {
		t.Errorf("Member(%s), not revoked: %v", ID(2), err)
	}
	// Not a member (any more): nothing is recorded or changed.
	for _, r := range []authority.Revocation{revocation(4, t0, time.Hour), revocation(1, t0, 9*time.Hour)} {
		if ok, err := s.RevokeMember(ctx(t), r); ok || err != nil {
			t.Errorf("RevokeMember(%s) of a non-member = %v, %v, want false, nil", r.Identifier, ok, err)
		}
	}
	if d := sameRevocations(mustRevocations(t, s, t0.Add(time.Minute)), []authority.Revocation{r1, r3}); d != "" {
		t.Errorf("Revocations after revoking non-members: %s", d)
	}
	// A member put back and revoked again: the new revocation replaces the old.
	mustPut(t, s, member(3, nil))
	r3b := revocation(3, t0.Add(time.Minute), 3*time.Hour)
	if ok, err := s.RevokeMember(ctx(t), r3b); !ok || err != nil {
		t.Fatalf("RevokeMember(%s) again = %v, %v", ID(3), ok, err)
	}
	if d := sameRevocations(mustRevocations(t, s, t0.Add(time.Minute)), []authority.Revocation{r1, r3b}); d != "" {
		t.Errorf("Revocations after revoking again: %s", d)
	}
}

// testRevocationExpires: a revocation is in force until its Until, and forgotten once a
// later revocation is recorded.
func testRevocationExpires(t *testing.T, s authority.Store) {
	mustPut(t, s, member(1, nil))
	mustPut(t, s, member(2, nil))
	r1 := revocation(1, t0, time.Hour)
	if ok, err := s.RevokeMember(ctx(t), r1); !ok || err != nil {
		t.Fatalf("RevokeMember = %v, %v", ok, err)
	}
	until := r1.Until.Truncate(time.Microsecond)
	for _, tc := range []struct {
		now  time.Time
		want []authority.Revocation
	}{
		{t0.Add(-time.Hour), []authority.Revocation{r1}},
		{until.Add(-time.Microsecond), []authority.Revocation{r1}},
		{until, nil},
		{until.Add(time.Hour), nil},
	} {
		if d := sameRevocations(mustRevocations(t, s, tc.now), tc.want); d != "" {
			t.Errorf("Revocations at until%+v: %s", tc.now.Sub(until), d)
		}
	}
	// Revoking another member after r1 ended forgets r1, even for an earlier clock.
	if ok, err := s.RevokeMember(ctx(t), revocation(2, until, time.Hour)); !ok || err != nil {
		t.Fatalf("RevokeMember = %v, %v", ok, err)
	}
	if d := sameRevocations(mustRevocations(t, s, t0), []authority.Revocation{revocation(2, until, time.Hour)}); d != "" {
		t.Errorf("Revocations after a later revocation: %s", d)
	}
}

// testPutMemberLiftsRevocation: a member added again is no longer revoked.
func testPutMemberLiftsRevocation(t *testing.T, s authority.Store) {
	mustPut(t, s, member(1, nil))
	mustPut(t, s, member(2, nil))
	for _, n := range []int{1, 2} {
		if ok, err := s.RevokeMember(ctx(t), revocation(n, t0, time.Hour)); !ok || err != nil {
			t.Fatalf("RevokeMember = %v, %v", ok, err)
		}
	}
	mustPut(t, s, member(1, map[string]string{"back": "yes"}))
	if d := sameRevocations(mustRevocations(t, s, t0), []authority.Revocation{revocation(2, t0, time.Hour)}); d != "" {
		t.Errorf("Revocations after putting %s back: %s", ID(1), d)
	}
}

// ConcurrentRedeem has 20 goroutines, half on a and half on b, redeem a 5-use ticket added
// through a; exactly 5 must succeed and the rest get ErrTicketUsed. a and b may be the same
// store, or two stores on one database (two nodes sharing it).
func ConcurrentRedeem(t *testing.T, a, b authority.Store) {
	const uses, redeemers = 5, 20
	h := SecretHash(42)
	mustAdd(t, a, authority.Ticket{SecretHash: h, UsesLeft: uses, Expires: t0, CreatedBy: ID(1)})
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		mu       sync.Mutex
		ok, used int
		left     = map[int]bool{}
	)
	for i := range redeemers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			got, err := s.RedeemTicket(ctx(t), h, t0.Add(-time.Minute))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				if left[got.UsesLeft] {
					t.Errorf("two redeemers saw UsesLeft %d", got.UsesLeft)
				}
				left[got.UsesLeft] = true
			case errors.Is(err, authority.ErrTicketUsed):
				used++
			default:
				t.Errorf("RedeemTicket: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != uses || used != redeemers-uses {
		t.Errorf("%d redeemers of a %d-use ticket: %d succeeded and %d got %v, want %d and %d",
			redeemers, uses, ok, used, authority.ErrTicketUsed, uses, redeemers-uses)
	}
}

func testClose(t *testing.T, s authority.Store) {
	mustPut(t, s, member(1, nil))
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Member(ctx(t), ID(1)); err == nil {
		t.Errorf("Member after Close = nil error, want one")
	}
}
