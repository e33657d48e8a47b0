package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

type peer string

func (p peer) Identifier() string { return string(p) }

// blockedServer is a server whose handler holds every request until release is closed, and
// records the callers whose requests it started.
type blockedServer struct {
	*Server
	release chan struct{}
	mu      sync.Mutex
	started map[string]int
}

func newBlockedServer(t *testing.T, concurrency int, l Limits) *blockedServer {
	t.Helper()
	r := routing.New(routing.Config{Logger: slog.New(slog.DiscardHandler)})
	b := &blockedServer{release: make(chan struct{}), started: make(map[string]int)}
	t.Cleanup(func() { close(b.release) })
	b.Server = NewServer(context.Background(), r, "svc", concurrency, slog.New(slog.DiscardHandler), func(ctx context.Context, q *Request) (any, error) {
		b.mu.Lock()
		b.started[q.Peer.Identifier()]++
		b.mu.Unlock()
		<-b.release
		return nil, nil
	}).Limit(l)
	return b
}

// request hands s a request from p, as if it came through p's channel.
func (b *blockedServer) request(p string) {
	m := routing.NewMessage()
	m.Return = routing.MustRoute(routing.LocalAddress("reply"))
	m.Local.Peer = peer(p)
	m.SetPayload([]byte("{}"))
	b.HandleMessage(m)
}

func (b *blockedServer) count(p string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started[p]
}

// TestMembersKeepSlotsUnderGuestFlood: guests (non-members) flooding a server with many
// identities, and one member flooding it, leave slots to every other member: guests have a
// pool of their own and a caller at most PerCaller requests in flight. Before, the first 16
// requests of anyone took every slot of the hub's authority and members' credential
// refreshes were dropped.
func TestMembersKeepSlotsUnderGuestFlood(t *testing.T) {
	const slots, guestSlots, perCaller = 8, 2, 2
	b := newBlockedServer(t, slots, Limits{PerCaller: perCaller, GuestSlots: guestSlots, Guest: func(p routing.Peer) bool {
		return strings.HasPrefix(p.Identifier(), "guest")
	}})
	for i := range 100 {
		b.request(fmt.Sprintf("guest-%d", i))
	}
	for range 50 {
		b.request("member-flooder")
	}
	members := slots/perCaller - 1 // besides the flooder, each with perCaller requests
	for i := range members {
		for range perCaller {
			b.request(fmt.Sprintf("member-%d", i))
		}
	}
	var guests, all int
	for deadline := time.Now().Add(10 * time.Second); all < slots+guestSlots && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.mu.Lock()
		guests, all = 0, 0
		for id, n := range b.started {
			if strings.HasPrefix(id, "guest") {
				guests += n
			}
			all += n
		}
		b.mu.Unlock()
	}
	if guests != guestSlots {
		t.Errorf("%d guests' requests started, want %d", guests, guestSlots)
	}
	if n := b.count("member-flooder"); n != perCaller {
		t.Errorf("the flooding member has %d requests started, want %d", n, perCaller)
	}
	for i := range members {
		if n := b.count(fmt.Sprintf("member-%d", i)); n != perCaller {
			t.Errorf("member %d has %d requests started, want %d", i, n, perCaller)
		}
	}
	if want := uint64(100 - guestSlots + 50 - perCaller); b.Dropped() != want {
		t.Errorf("%d requests dropped, want %d", b.Dropped(), want)
	}
}
