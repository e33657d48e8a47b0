package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
)

// fakeHistoryStore records the peer histories stored, which learn does in the background.
type fakeHistoryStore struct{ put chan state.PeerHistory }

func (f fakeHistoryStore) PutPeerHistory(ctx context.Context, rec state.PeerHistory) error {
	f.put <- rec
	return nil
}
func (f fakeHistoryStore) PeerHistories(ctx context.Context, limit int) ([]state.PeerHistory, error) {
	return nil, nil
}
func (f fakeHistoryStore) SetSetting(ctx context.Context, key, value string) error { return nil }

// TestHistoriesKeepTheLongest: a peer's rotated history replaces the one known and is
// stored; a shorter one does not go back, and the node's own history is not learned from
// peers.
func TestHistoriesKeepTheLongest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	peer, err := identity.New(seededKey(10), now)
	if err != nil {
		t.Fatal(err)
	}
	rotated := peer.Clone()
	if err := rotated.Rotate(seededKey(10), seededKey(11), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	own, err := identity.New(seededKey(20), now)
	if err != nil {
		t.Fatal(err)
	}
	ownRotated := own.Clone()
	if err := ownRotated.Rotate(seededKey(20), seededKey(21), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	store := fakeHistoryStore{make(chan state.PeerHistory, 4)}
	hs := &histories{cfg: historiesConfig{
		Project: &membership{now: func() time.Time { return now }}, Self: own.Identifier(),
		Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}

	hs.learn(rotated)
	if got := hs.get(peer.Identifier()); got != rotated {
		t.Fatalf("get after learning the rotated history = %v, want it", got)
	}
	select {
	case rec := <-store.put:
		if rec.Identifier != string(peer.Identifier()) || rec.Changes != rotated.Len() {
			t.Errorf("stored %s with %d changes, want %s with %d", rec.Identifier, rec.Changes, peer.Identifier(), rotated.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rotated history was not stored")
	}
	hs.learn(peer)
	if got := hs.get(peer.Identifier()); got != rotated {
		t.Errorf("a shorter history replaced the longer one")
	}
	hs.learn(ownRotated)
	if got := hs.get(own.Identifier()); got != nil {
		t.Errorf("the node learned its own history from a peer")
	}
}
