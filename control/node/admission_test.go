package node

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/securechannel"
)

type strangerPeer string

func (p strangerPeer) Identifier() string { return string(p) }

// hubAdmission is the admission of a hub's listener with caps, outside a running node.
func hubAdmission(t *testing.T, caps Caps) *admission {
	t.Helper()
	caps.setDefaults()
	n := &Node{cfg: Config{Caps: caps}, log: slog.New(slog.DiscardHandler)}
	n.project.Store(&project{name: "acme", hub: true})
	a := newAdmission(n)
	t.Cleanup(a.refusals.Stop)
	return a
}

// TestStrangerPoolNotHeldByOneOrigin: throwaway identities from one origin fill a hub's
// stranger pool; a stranger from another origin still gets a channel, and the channels
// closed for it are the flooding origin's oldest. The flooding origin never holds more than
// StrangerChannelsPerOrigin. Before, 16 identities of 4 channels held all 64 places for
// StrangerTimeout and every other stranger (every enrollment) was refused.
func TestStrangerPoolNotHeldByOneOrigin(t *testing.T) {
	a := hubAdmission(t, Caps{})
	perOrigin, pool := a.caps.StrangerChannelsPerOrigin, a.caps.StrangerChannels
	closed := map[string]bool{}
	admit := func(id, origin string, n int) (func(), error) {
		name := fmt.Sprintf("%s#%d", id, n)
		member, release, err := a.Admit(securechannel.Admission{Peer: strangerPeer(id), Origin: origin, Close: func() { closed[name] = true }})
		if member {
			t.Fatalf("%s admitted as a member", name)
		}
		return release, err
	}
	// The flooder: many origins' worth of identities, all from one address, 4 channels each.
	for i := range pool {
		for j := range a.caps.StrangerChannelsPerIdentity {
			if _, err := admit(fmt.Sprintf("throwaway-%d", i), "s:192.0.2.1", j); err != nil {
				t.Fatalf("throwaway %d channel %d: %v", i, j, err)
			}
		}
	}
	if got := len(a.origins.Held("s:192.0.2.1")); got != perOrigin {
		t.Fatalf("the flooding origin holds %d stranger channels, want %d", got, perOrigin)
	}
	// Other origins fill the rest of the pool, one channel each beyond the flooder's.
	for i := range pool - perOrigin {
		if _, err := admit(fmt.Sprintf("other-%d", i), fmt.Sprintf("s:198.51.100.%d", i), 0); err != nil {
			t.Fatalf("origin %d: %v", i, err)
		}
	}
	before := len(closed)
	release, err := admit("honest", "s:203.0.113.7", 0)
	if err != nil {
		t.Fatalf("a new origin's stranger refused with the pool full: %v", err)
	}
	if len(closed) != before+1 {
		t.Fatalf("%d channels closed for the new origin's, want 1", len(closed)-before)
	}
	for name := range closed {
		if !strings.HasPrefix(name, "throwaway-") {
			t.Fatalf("closed %s, not the flooding origin's", name)
		}
	}
	if a.origins.Len() != pool || len(a.origins.Held("s:192.0.2.1")) != perOrigin-1 {
		t.Fatalf("%d strangers' channels, the flooder's origin %d; want %d and %d", a.origins.Len(), len(a.origins.Held("s:192.0.2.1")), pool, perOrigin-1)
	}
	release()
	release()
	if a.origins.Len() != pool-1 || a.origins.Held("s:203.0.113.7") != nil || a.strangers["honest"] != 0 {
		t.Fatalf("release left %d channels, origin %v, identity %d", a.origins.Len(), a.origins.Held("s:203.0.113.7"), a.strangers["honest"])
	}
}

// TestStrangerAgainMakesNoRoom: a stranger's channel that presents refreshed data and is a
// stranger still closes no other channel and keeps its one place.
func TestStrangerAgainMakesNoRoom(t *testing.T) {
	a := hubAdmission(t, Caps{StrangerChannels: 2})
	var closed int
	for i := range 2 {
		if _, _, err := a.Admit(securechannel.Admission{Peer: strangerPeer(fmt.Sprint(i)), Origin: "s:192.0.2.1", Close: func() { closed++ }}); err != nil {
			t.Fatal(err)
		}
	}
	_, release, err := a.Admit(securechannel.Admission{Peer: strangerPeer("0"), Origin: "s:192.0.2.1", Close: func() { closed++ }, Again: true})
	if err != nil || closed != 0 || a.origins.Len() != 2 {
		t.Fatalf("again: err %v, %d closed, %d held; want none closed and 2 held", err, closed, a.origins.Len())
	}
	release()
	if a.origins.Len() != 2 {
		t.Fatalf("%d held after the release of an again, want 2", a.origins.Len())
	}
}
