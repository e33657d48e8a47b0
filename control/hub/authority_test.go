package hub_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/sqlitestore"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/control/credential"
	"github.com/adjacentnet/adjacent/control/event"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/ticket"
)

type signer struct{ priv ed25519.PrivateKey }

func (s signer) Public() ed25519.PublicKey       { return s.priv.Public().(ed25519.PublicKey) }
func (s signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

func newSigner(seed string) signer {
	h := sha256.Sum256([]byte(seed))
	return signer{ed25519.NewKeyFromSeed(h[:])}
}

// caller is a peer with the attributes its credential would give it.
type caller struct {
	id      identity.Identifier
	attrs   map[string]string
	expires time.Time
}

func (c caller) Identifier() string            { return string(c.id) }
func (c caller) Attributes() map[string]string { return c.attrs }
func (c caller) Expires() time.Time            { return c.expires }

// bare is a peer that is not a Caller: it came through no secure channel.
type bare struct{}

func (bare) Identifier() string { return "Ibare" }

// revoked is a Revoked table that also records what it was asked.
type revoked struct {
	mu       sync.Mutex
	m        map[identity.Identifier]time.Time
	enforced []identity.Identifier
	lifted   []identity.Identifier
}

func (r *revoked) Until(id identity.Identifier) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.m[id]
	return u, ok
}

func (r *revoked) Range(f func(identity.Identifier, time.Time) bool) {
	r.mu.Lock()
	m := maps.Clone(r.m)
	r.mu.Unlock()
	for id, u := range m {
		if !f(id, u) {
			return
		}
	}
}

func (r *revoked) Enforce(id identity.Identifier, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[id]; !ok || old.Before(until) {
		r.m[id] = until
	}
	r.enforced = append(r.enforced, id)
}

func (r *revoked) Lift(id identity.Identifier) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
	r.lifted = append(r.lifted, id)
}

// members records the events the service sends.
type members struct {
	mu        sync.Mutex
	announced [][]byte
	except    []identity.Identifier
	told      map[identity.Identifier][][]byte
}

func (m *members) Announce(b []byte, except identity.Identifier) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.announced = append(m.announced, b)
	m.except = append(m.except, except)
}

func (m *members) Tell(id identity.Identifier, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.told == nil {
		m.told = map[identity.Identifier][][]byte{}
	}
	m.told[id] = append(m.told[id], b)
}

type fixture struct {
	svc     *hub.AuthorityService
	auth    *authority.Authority
	history *identity.History
	revoked *revoked
	members *members
	now     time.Time
}

const project = "acme"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	now := time.Unix(1_900_000_000, 0)
	idKey, signKey := newSigner("identity"), newSigner("signing")
	h, err := identity.New(idKey, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	att, err := identity.Attest(idKey, h.Identifier(), identity.PurposeCredentialSigning, signKey.Public(), now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "authority.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{history: h, revoked: &revoked{m: map[identity.Identifier]time.Time{}}, members: &members{}, now: now}
	clock := func() time.Time { return f.now }
	f.auth, err = authority.New(authority.Config{Project: project, Identity: h, Signer: signKey, Attested: att, Store: s, Lifetime: 10 * time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	self := h.Identifier()
	if err := f.auth.AddMember(t.Context(), self, self, map[string]string{authority.AttrAdmin: "true", authority.AttrEnroller: "true", authority.AttrRelay: "*"}, true); err != nil {
		t.Fatal(err)
	}
	f.svc = hub.NewAuthorityService(hub.AuthorityConfig{
		Project: project, Public: "/ip4/127.0.0.1/tcp/4000", Authority: f.auth,
		History: func() *identity.History { return h },
		Revoked: f.revoked, Members: f.members, Now: clock,
	})
	return f
}

// member returns a caller holding a valid credential of the project with attrs.
func (f *fixture) member(n int, attrs map[string]string) caller {
	a := map[string]string{authority.AttrMember: "true", authority.AttrProject: project}
	maps.Copy(a, attrs)
	return caller{id: storetest.ID(n), attrs: a, expires: f.now.Add(5 * time.Minute)}
}

func (f *fixture) add(t *testing.T, n int, attrs map[string]string) caller {
	t.Helper()
	if _, err := f.svc.Local(t.Context(), hub.MemberAdd{Member: storetest.ID(n), Attributes: attrs}); err != nil {
		t.Fatal(err)
	}
	return f.member(n, attrs)
}

// TestAuthorityEnroll: a stranger redeems a ticket the hub made for a credential of the
// project with the ticket's attributes, once; the ticket's text names the project and hub.
func TestAuthorityEnroll(t *testing.T) {
	f := newFixture(t)
	out, err := f.svc.Local(t.Context(), hub.Ticket{Options: authority.TicketOptions{Relay: "db", Enroller: true}})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ticket.Parse(out.(api.Ticket).Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Project != project || tk.Hub != "/ip4/127.0.0.1/tcp/4000" {
		t.Errorf("ticket for project %q at %q", tk.Project, tk.Hub)
	}
	stranger := caller{id: storetest.ID(7)}
	f.revoked.Enforce(stranger.id, f.now.Add(time.Hour)) // deleted once, back with a ticket
	ans, err := f.svc.Serve(t.Context(), stranger, hub.Enroll{Secret: tk.Secret})
	if err != nil {
		t.Fatal(err)
	}
	ca := ans.(hub.CredentialAnswer)
	b, err := credential.DecodeBundle(ca.Credential)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Project != project || b.Credential.Subject() != stranger.id || b.Credential.Attributes()[authority.AttrRelay] != "db" || b.Credential.Attributes()[authority.AttrEnroller] != "true" {
		t.Errorf("enrolled with %q: subject %s, attributes %v", ca.Project, b.Credential.Subject(), b.Credential.Attributes())
	}
	if _, ok := f.revoked.Until(stranger.id); ok {
		t.Errorf("an enrolled member stays revoked")
	}
	if _, err := f.svc.Serve(t.Context(), caller{id: storetest.ID(8)}, hub.Enroll{Secret: tk.Secret}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("second use of a ticket: %v, want refused as used", err)
	}
}

// TestAuthorityCredential: a member gets a fresh credential; a revoked member and a request
// that came through no secure channel do not.
func TestAuthorityCredential(t *testing.T) {
	f := newFixture(t)
	m := f.add(t, 1, map[string]string{"team": "db"})
	ans, err := f.svc.Serve(t.Context(), m, hub.Credential{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := credential.DecodeBundle(ans.(hub.CredentialAnswer).Credential)
	if err != nil || b.Credential.Subject() != m.id || b.Credential.Attributes()["team"] != "db" {
		t.Fatalf("credential %v, %v", b, err)
	}
	for _, peer := range []any{nil, bare{}} {
		var err error
		if peer == nil {
			_, err = f.svc.Serve(t.Context(), nil, hub.Credential{})
		} else {
			_, err = f.svc.Serve(t.Context(), peer.(bare), hub.Credential{})
		}
		if !errors.Is(err, hub.ErrNoChannel) {
			t.Errorf("request from %v: %v, want %v", peer, err, hub.ErrNoChannel)
		}
	}
	f.revoked.Enforce(m.id, f.now.Add(time.Minute))
	if _, err := f.svc.Serve(t.Context(), m, hub.Credential{}); err == nil || !strings.Contains(err.Error(), "no longer a member") {
		t.Errorf("credential for a revoked member: %v, want refused", err)
	}
	f.now = f.now.Add(2 * time.Minute) // the revocation ended
	if _, err := f.svc.Serve(t.Context(), m, hub.Credential{}); err != nil {
		t.Errorf("credential after the revocation ended: %v", err)
	}
}

// TestAuthorityRefusesNonEnrollers: tickets and member management are for enrollers; a
// member without the attribute and a stranger are refused, and nothing changes.
func TestAuthorityRefusesNonEnrollers(t *testing.T) {
	f := newFixture(t)
	plain := f.add(t, 1, nil)
	victim := f.add(t, 2, nil)
	for _, c := range []caller{plain, {id: storetest.ID(9)}} {
		for _, req := range []hub.AuthorityRequest{
			hub.Ticket{}, hub.MemberList{}, hub.MemberAdd{Member: storetest.ID(3)}, hub.MemberDelete{Member: victim.id},
		} {
			if _, err := f.svc.Serve(t.Context(), c, req); err == nil || !strings.Contains(err.Error(), "needs the enroller attribute") {
				t.Errorf("%s by %s: %v, want refused", req.Op(), c.id, err)
			}
		}
	}
	if len(f.revoked.enforced) != 0 || len(f.members.announced) != 0 {
		t.Errorf("refused requests revoked %v, announced %d", f.revoked.enforced, len(f.members.announced))
	}
	ms, err := f.svc.Local(t.Context(), hub.MemberList{})
	if err != nil || len(ms.([]api.Member)) != 3 {
		t.Errorf("members after refused requests: %v, %v; want the hub and two", ms, err)
	}
	if _, err := f.svc.Local(t.Context(), hub.Enroll{}); err == nil {
		t.Errorf("the hub enrolled itself through its local API")
	}
}

// TestAuthorityMembers: an enroller adds a member (who is told to refresh, and is no longer
// revoked), lists it, deletes it (the node enforces the revocation and every other member
// hears it, signed by the authority); the hub cannot delete itself.
func TestAuthorityMembers(t *testing.T) {
	f := newFixture(t)
	enroller := f.add(t, 1, map[string]string{authority.AttrEnroller: "true"})
	id := storetest.ID(2)
	f.revoked.Enforce(id, f.now.Add(time.Hour))
	if _, err := f.svc.Serve(t.Context(), enroller, hub.MemberAdd{Member: id, Attributes: map[string]string{"team": "ops"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.revoked.Until(id); ok {
		t.Errorf("an added member stays revoked")
	}
	told := f.members.told[id]
	if len(told) != 1 {
		t.Fatalf("member told %d times of its new attributes, want 1", len(told))
	}
	if ev := verify(t, f, told[0]); ev.Kind != event.KindAttributes || ev.Subject != id {
		t.Errorf("told %+v", ev)
	}
	out, err := f.svc.Serve(t.Context(), enroller, hub.MemberList{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range out.([]api.Member) {
		if m.Identifier == string(id) {
			found = m.Attributes["team"] == "ops" && m.AddedBy == string(enroller.id)
		}
	}
	if !found {
		t.Errorf("member list %+v lacks %s added by %s", out, id, enroller.id)
	}

	if _, err := f.svc.Serve(t.Context(), enroller, hub.MemberDelete{Member: id}); err != nil {
		t.Fatal(err)
	}
	until, ok := f.revoked.Until(id)
	if !ok || !until.After(f.now.Add(10*time.Minute)) {
		t.Errorf("deleted member refused until %v (%v), want past its last credential", until, ok)
	}
	if len(f.members.announced) != 1 || f.members.except[0] != id {
		t.Fatalf("announced %d revocations (except %v), want 1 except the deleted member", len(f.members.announced), f.members.except)
	}
	if ev := verify(t, f, f.members.announced[0]); ev.Kind != event.KindRevoked || ev.Subject != id || !ev.Until.Equal(until) {
		t.Errorf("announced %+v", ev)
	}
	if _, err := f.svc.Serve(t.Context(), enroller, hub.MemberDelete{Member: id}); err == nil || !strings.Contains(err.Error(), "is not a member") {
		t.Errorf("deleting a non-member: %v", err)
	}
	if _, err := f.svc.Serve(t.Context(), enroller, hub.MemberDelete{Member: f.history.Identifier()}); err == nil || !strings.Contains(err.Error(), "cannot remove itself") {
		t.Errorf("deleting the hub: %v", err)
	}
}

func verify(t *testing.T, f *fixture, b []byte) event.Event {
	t.Helper()
	s, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Verify(f.history, project, f.now)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestAuthorityRevocations: a member that (re)connects hears the revocations in force,
// signed, in identifier order, and the same signature while it is fresh; strangers and revoked
// members hear nothing.
func TestAuthorityRevocations(t *testing.T) {
	f := newFixture(t)
	m := f.add(t, 1, nil)
	f.revoked.Enforce(storetest.ID(2), f.now.Add(time.Hour))
	f.revoked.Enforce(storetest.ID(3), f.now.Add(2*time.Hour))
	f.revoked.Enforce(storetest.ID(4), f.now.Add(-time.Second)) // ended
	out, err := f.svc.Serve(t.Context(), m, hub.Revocations{})
	if err != nil {
		t.Fatal(err)
	}
	evs := out.(hub.RevocationsAnswer).Events
	if len(evs) != 2 {
		t.Fatalf("%d revocations, want the 2 in force", len(evs))
	}
	if a, b := verify(t, f, evs[0]), verify(t, f, evs[1]); a.Subject >= b.Subject || a.Subject != min(storetest.ID(2), storetest.ID(3)) || b.Subject != max(storetest.ID(2), storetest.ID(3)) {
		t.Errorf("revocations of %s, %s; want those of %s and %s in identifier order", a.Subject, b.Subject, storetest.ID(2), storetest.ID(3))
	}
	again, err := f.svc.Serve(t.Context(), m, hub.Revocations{})
	if err != nil || string(again.(hub.RevocationsAnswer).Events[0]) != string(evs[0]) {
		t.Errorf("asked again: %v; want the same signed events", err)
	}
	stale := m
	stale.expires = f.now.Add(-time.Second)
	for _, c := range []caller{{id: storetest.ID(9)}, stale, f.member(2, nil)} {
		if _, err := f.svc.Serve(t.Context(), c, hub.Revocations{}); err == nil || !strings.Contains(err.Error(), "is not a member") {
			t.Errorf("revocations for %s: %v, want refused", c.id, err)
		}
	}
}

// TestAuthorityReload: revocations made by another hub sharing the member store are
// enforced and announced; those lifted there are lifted here; Load refuses the stored ones.
func TestAuthorityReload(t *testing.T) {
	f := newFixture(t)
	gone := f.add(t, 1, nil)
	back := storetest.ID(2)
	f.revoked.Enforce(back, f.now.Add(time.Hour)) // the other hub added it back
	r, ok, err := f.auth.Revoke(t.Context(), gone.id)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	f.svc.Reload(t.Context())
	if until, ok := f.revoked.Until(gone.id); !ok || !until.Equal(r.Until) {
		t.Errorf("revocation from the store: until %v (%v), want %v", until, ok, r.Until)
	}
	if _, ok := f.revoked.Until(back); ok {
		t.Errorf("a revocation no longer stored is still enforced")
	}
	if len(f.members.announced) != 1 {
		t.Errorf("announced %d revocations, want 1", len(f.members.announced))
	}
	f.svc.Reload(t.Context())
	if len(f.members.announced) != 1 {
		t.Errorf("a reload announced a known revocation again")
	}

	f.revoked.m = map[identity.Identifier]time.Time{} // a restarted hub
	if err := f.svc.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.revoked.Until(gone.id); !ok {
		t.Errorf("Load did not refuse the stored revocation")
	}
}

// TestAuthorityRevocationsPaged: a hub holding more revocations than one answer carries
// (MaxRevocationsAnswer) hands them in pages, each bounded, that a member walks with After
// and Next until Next is empty, and so hears every one exactly once.
func TestAuthorityRevocationsPaged(t *testing.T) {
	f := newFixture(t)
	m := f.add(t, 1, nil)
	const n = 2*hub.MaxRevocationsAnswer + 44
	for i := range n {
		f.revoked.Enforce(storetest.ID(100+i), f.now.Add(time.Hour))
	}
	seen := map[identity.Identifier]bool{}
	var after identity.Identifier
	pages := 0
	for {
		out, err := f.svc.Serve(t.Context(), m, hub.Revocations{After: after})
		if err != nil {
			t.Fatal(err)
		}
		ans := out.(hub.RevocationsAnswer)
		pages++
		if len(ans.Events) > hub.MaxRevocationsAnswer {
			t.Fatalf("page %d has %d revocations, want at most %d", pages, len(ans.Events), hub.MaxRevocationsAnswer)
		}
		for _, b := range ans.Events {
			ev := verify(t, f, b)
			if seen[ev.Subject] {
				t.Fatalf("revocation of %s heard twice", ev.Subject)
			}
			seen[ev.Subject] = true
		}
		if ans.Next == "" {
			break
		}
		if pages > n {
			t.Fatal("the pages do not end")
		}
		after = identity.Identifier(ans.Next)
	}
	if len(seen) != n || pages != 3 {
		t.Errorf("heard %d revocations in %d pages, want %d in 3", len(seen), pages, n)
	}
	// The request's wire form carries the cursor.
	enc, err := hub.EncodeAuthority(hub.Revocations{After: storetest.ID(7)})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := hub.DecodeAuthority(enc); err != nil || r != (hub.Revocations{After: storetest.ID(7)}) {
		t.Errorf("DecodeAuthority(EncodeAuthority(Revocations after)) = %v, %v", r, err)
	}
}
