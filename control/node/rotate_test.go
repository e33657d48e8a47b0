package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/control/vault"
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
	key := testKeys(t)
	peer, rotated := rotatedOnce(t, key, now)
	own, ownRotated := rotatedOnce(t, key, now)
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

// rotatedOnce returns a new identity's history, and the same after one rotation.
func rotatedOnce(t *testing.T, key func() *vault.Ed25519Key, now time.Time) (first, rotated *identity.History) {
	t.Helper()
	k := key()
	first, err := identity.New(k, now)
	if err != nil {
		t.Fatal(err)
	}
	rotated = first.Clone()
	if err := rotated.Rotate(k, key(), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return first, rotated
}
