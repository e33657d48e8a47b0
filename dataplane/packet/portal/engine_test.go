package portal

import (
	"runtime"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// fakeLink is a link that never goes down.
type fakeLink struct {
	routing.Link
	done chan struct{}
}

func (l fakeLink) Done() <-chan struct{} { return l.done }

// A remote peer makes the engine remember its path; the table of them is capped, and a peer
// the engine forgets (a policy cut it, while its channel lives on) leaves nothing behind.
func TestPeersCappedAndForgotten(t *testing.T) {
	e := NewEngine(EngineConfig{Router: routing.New(routing.Config{}), MaxPeers: 8})
	o := &Outlet{e: e}
	link := fakeLink{done: make(chan struct{})}
	msg := func(i int) (*routing.Message, routing.Route) {
		m := routing.NewMessage()
		m.Local.Flow, m.Local.Link = 7, link
		return m, routing.MustRoute(routing.LocalAddress("packets." + string(rune('a'+i))))
	}
	var peers []*peer
	for i := range 8 {
		m, r := msg(i)
		peers = append(peers, e.peerOf(o, m, r))
		if again := e.peerOf(o, m, r); again != peers[i] {
			t.Fatalf("the same path's second message made another peer")
		}
	}
	if m, r := msg(8); e.peerOf(o, m, r) != nil {
		t.Fatalf("a ninth path was taken over a cap of 8")
	}
	before := runtime.NumGoroutine()
	for range 100 { // a peer cut and back, again and again, on one live channel
		e.dropPeer(peers[0], "test")
		m, r := msg(0)
		peers[0] = e.peerOf(o, m, r)
	}
	for _, p := range peers {
		e.dropPeer(p, "test")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() >= before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n >= before {
		t.Errorf("%d goroutines after every peer was forgotten, %d with 8 peers: the watchers of forgotten peers stay", n, before)
	}
	if len(e.peersOf(o)) != 0 || e.npeers != 0 {
		t.Errorf("peers left: %d (count %d)", len(e.peersOf(o)), e.npeers)
	}
}
