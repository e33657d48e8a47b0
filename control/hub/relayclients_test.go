package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

type testPeer string

func (p testPeer) Identifier() string { return string(p) }

// TestRelayClientsCapped: a relay remembers at most MaxRelayClients clients, with their
// messages and bytes; the messages of later ones are only counted.
func TestRelayClientsCapped(t *testing.T) {
	var c relayClients
	now := time.Unix(1000, 0)
	m := routing.NewMessage()
	for i := range MaxRelayClients + 10 {
		m.Local.Peer = testPeer(fmt.Sprintf("I%04d", i))
		c.note(m, now)
	}
	m.Local.Peer = testPeer("I0000")
	c.note(m, now)
	m.Local.Peer = nil
	c.note(m, now) // not through a secure channel: not a client
	l := c.list()
	if len(l) != MaxRelayClients || c.other.Load() != 10 {
		t.Fatalf("%d clients listed, %d messages of others; want %d and 10", len(l), c.other.Load(), MaxRelayClients)
	}
	if l[0].Identifier != "I0000" || l[0].Messages != 2 || !l[0].LastSeen.Equal(now) {
		t.Fatalf("first client = %+v, want I0000 with 2 messages, last seen %v", l[0], now)
	}
}
