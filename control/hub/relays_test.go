package hub_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/policy"
	"github.com/adjacentnet/adjacent/routing"
)

// owners is an in-memory RelayOwners.
type owners struct {
	mu sync.Mutex
	m  map[string]string
}

func (o *owners) RelayOwner(_ context.Context, name string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[name], nil
}

func (o *owners) SetRelayOwner(_ context.Context, name, owner string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if owner == "" {
		delete(o.m, name)
	} else {
		o.m[name] = owner
	}
	return nil
}

type relayFixture struct {
	svc      *hub.RelayService
	router   *routing.Router
	owners   *owners
	revoked  map[identity.Identifier]bool
	overCap  []string
	listener routing.FlowID
}

func newRelayFixture(t *testing.T, perIdentity int) *relayFixture {
	t.Helper()
	f := &relayFixture{router: routing.New(routing.Config{}), owners: &owners{m: map[string]string{}}, revoked: map[identity.Identifier]bool{}}
	f.svc = hub.NewRelayService(hub.RelayConfig{
		Project: project, Router: f.router, Owners: f.owners,
		Policy:  func(string) *policy.Policy { return policy.AllowMembers() },
		Revoked: func(id identity.Identifier) bool { return f.revoked[id] },
		SenderRevoked: func(m *routing.Message, _ string) bool {
			return m.Local.Peer != nil && f.revoked[identity.Identifier(m.Local.Peer.Identifier())]
		},
		OverCap:     func(owner string, _ int) { f.overCap = append(f.overCap, owner) },
		PerIdentity: perIdentity,
	})
	f.listener = f.router.NewFlow()
	if err := f.svc.Open(f.listener); err != nil {
		t.Fatal(err)
	}
	return f
}

// relayMember is a member whose credential allows relay.
func relayMember(n int, relay string) caller {
	a := map[string]string{authority.AttrMember: "true", authority.AttrProject: project}
	if relay != "" {
		a[authority.AttrRelay] = relay
	}
	return caller{id: storetest.ID(n), attrs: a}
}

func (f *relayFixture) from() hub.From {
	return hub.From{Channel: routing.LocalAddress("sc.test"), Flow: f.router.NewFlow()}
}

// TestRelayCreateListDelete: a member creates the relay its credential allows; the relay
// is a worker of the router, listed with its owner; the owner deletes it and the name is
// free again.
func TestRelayCreateListDelete(t *testing.T) {
	f := newRelayFixture(t, 0)
	m := relayMember(1, "db")
	out, err := f.svc.Serve(t.Context(), m, f.from(), hub.RelayCreate{Name: "db"})
	if err != nil {
		t.Fatal(err)
	}
	want := api.Relay{Name: "db", Address: "/service/forward_to_db", Owner: string(m.id)}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("created %+v, want %+v", out, want)
	}
	if f.owners.m["db"] != string(m.id) {
		t.Errorf("owner stored %q", f.owners.m["db"])
	}
	if !f.router.Registered(hub.RelayPrefix + "db") {
		t.Errorf("relay not registered at the router")
	}
	// Created again, from a new channel: it moves, and it is still one relay.
	if _, err := f.svc.Serve(t.Context(), m, f.from(), hub.RelayCreate{Name: "db"}); err != nil {
		t.Fatal(err)
	}
	ls, err := f.svc.Serve(t.Context(), relayMember(2, ""), hub.From{}, hub.RelayList{})
	if err != nil {
		t.Fatal(err)
	}
	if l := ls.([]api.Relay); len(l) != 1 || l[0].Name != "db" || l[0].Owner != string(m.id) || l[0].Clients == nil {
		t.Errorf("list %+v", l)
	}
	if _, err := f.svc.Serve(t.Context(), m, f.from(), hub.RelayDelete{Name: "db"}); err != nil {
		t.Fatal(err)
	}
	if len(f.svc.List()) != 0 || f.owners.m["db"] != "" || f.router.Registered(hub.RelayPrefix+"db") {
		t.Errorf("after delete: %+v, owner %q", f.svc.List(), f.owners.m["db"])
	}
}

// TestRelayRefusals: strangers, revoked members and requests through no channel are
// refused; a member may not take a name its credential does not allow, nor one another
// identity holds (the admin may); names are checked.
func TestRelayRefusals(t *testing.T) {
	f := newRelayFixture(t, 0)
	holder := relayMember(1, "*")
	if _, err := f.svc.Serve(t.Context(), holder, f.from(), hub.RelayCreate{Name: "db"}); err != nil {
		t.Fatal(err)
	}
	f.revoked[storetest.ID(3)] = true
	for _, tc := range []struct {
		peer routing.Peer
		req  hub.RelayRequest
		want string
	}{
		{nil, hub.RelayList{}, "secure channel"},
		{bare{}, hub.RelayList{}, "secure channel"},
		{caller{id: storetest.ID(9)}, hub.RelayList{}, "is not a member"},
		{relayMember(3, "*"), hub.RelayCreate{Name: "web"}, "is not a member"},
		{relayMember(2, "web"), hub.RelayCreate{Name: "mail"}, "may not create relay"},
		{relayMember(2, ""), hub.RelayCreate{Name: "web"}, "may not create relay"},
		{relayMember(2, "*"), hub.RelayCreate{Name: "db"}, "is held by"},
		{relayMember(2, "*"), hub.RelayDelete{Name: "db"}, "is held by"},
		{relayMember(2, "*"), hub.RelayCreate{Name: "no/slash"}, "relay name"},
		{relayMember(2, "*"), hub.RelayDelete{Name: ""}, "relay name"},
	} {
		_, err := f.svc.Serve(t.Context(), tc.peer, f.from(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %s %+v: %v, want %q", tc.peer, tc.req.Op(), tc.req, err, tc.want)
		}
	}
	if l := f.svc.List(); len(l) != 1 || l[0].Owner != string(holder.id) {
		t.Errorf("after refusals: %+v", l)
	}
	admin := relayMember(4, "")
	admin.attrs[authority.AttrAdmin] = "true"
	if _, err := f.svc.Serve(t.Context(), admin, f.from(), hub.RelayDelete{Name: "db"}); err != nil {
		t.Errorf("the admin deleting a member's relay: %v", err)
	}
}

// TestRelaysPerIdentity: an identity holds at most PerIdentity relays; registering one it
// holds again is allowed; the refusal is counted; revoking the owner drops its relays only.
func TestRelaysPerIdentity(t *testing.T) {
	f := newRelayFixture(t, 2)
	m, other := relayMember(1, "*"), relayMember(2, "*")
	for _, name := range []string{"one", "two", "one"} {
		if _, err := f.svc.Serve(t.Context(), m, f.from(), hub.RelayCreate{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Serve(t.Context(), m, f.from(), hub.RelayCreate{Name: "three"}); err == nil || !strings.Contains(err.Error(), "capacity") {
		t.Fatalf("third relay: %v, want refused for capacity", err)
	}
	if len(f.overCap) != 1 || f.overCap[0] != string(m.id) {
		t.Errorf("refusals counted %v", f.overCap)
	}
	if _, err := f.svc.Serve(t.Context(), other, f.from(), hub.RelayCreate{Name: "three"}); err != nil {
		t.Fatal(err)
	}
	f.svc.DropOwnedBy(m.id)
	if l := f.svc.List(); len(l) != 1 || l[0].Name != "three" {
		t.Errorf("after revoking the owner of one and two: %+v", l)
	}
}

// TestRelayRequests: each relay request decodes to itself from its wire form; malformed
// ones are refused.
func TestRelayRequests(t *testing.T) {
	for _, req := range []hub.RelayRequest{hub.RelayCreate{Name: "db"}, hub.RelayDelete{Name: "db"}, hub.RelayList{}} {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := hub.DecodeRelay(b)
		if err != nil || got != req {
			t.Errorf("%s: %#v, %v", b, got, err)
		}
	}
	for _, s := range []string{``, `{}`, `{"op":"steal"}`, `{"op":"list","name":"db"}`, `{"op":"create","name":"db","owner":"x"}`, `{"op":"create"} {}`, `{"op":"create","name":"` + strings.Repeat("a", 300) + `"}`} {
		if r, err := hub.DecodeRelay([]byte(s)); err == nil {
			t.Errorf("%.60s: decoded %#v, want refused", s, r)
		}
	}
}

// FuzzDecodeRelay: whatever decodes encodes to a form that decodes to the same request.
func FuzzDecodeRelay(f *testing.F) {
	f.Add([]byte(`{"op":"create","name":"db"}`))
	f.Add([]byte(`{"op":"list"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := hub.DecodeRelay(b)
		if err != nil {
			return
		}
		enc, err := hub.EncodeRelay(req)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := hub.DecodeRelay(enc); err != nil || again != req {
			t.Fatalf("%q decoded to %#v, encoded %q, decoded again %#v, %v", b, req, enc, again, err)
		}
	})
}

// TestRelayNotesClients: the relay remembers the members whose messages it admitted, for
// relay list; a revoked member's messages are refused and leave no trace.
func TestRelayNotesClients(t *testing.T) {
	f := newRelayFixture(t, 0)
	if _, err := f.svc.Serve(t.Context(), relayMember(1, "db"), f.from(), hub.RelayCreate{Name: "db"}); err != nil {
		t.Fatal(err)
	}
	f.revoked[storetest.ID(3)] = true
	for _, c := range []caller{relayMember(2, ""), relayMember(3, ""), relayMember(2, "")} {
		m := routing.NewMessage()
		m.Onward = routing.MustRoute(routing.LocalAddress(hub.RelayPrefix+"db"), routing.LocalAddress("echo"))
		m.Return = routing.MustRoute(routing.LocalAddress("sc.client"))
		m.Local = routing.Local{Flow: f.listener, Peer: c}
		m.SetPayload([]byte("hello"))
		f.router.Send(m)
	}
	l := f.svc.List()
	if len(l) != 1 || len(l[0].Clients) != 1 {
		t.Fatalf("relays %+v, want one with one client", l)
	}
	if c := l[0].Clients[0]; c.Identifier != string(storetest.ID(2)) || c.Messages != 2 || c.Bytes != 10 {
		t.Errorf("client %+v, want %s with 2 messages of 10 bytes", c, storetest.ID(2))
	}
}
