package state

import (
	"context"
	"path/filepath"
	"testing"
)

// TestPeerHistoryNeverShortens: a shorter history stored after a longer one of the same peer
// (writes out of order) leaves the longer one.
func TestPeerHistoryNeverShortens(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, h := range []PeerHistory{
		{"Ia", 2, []byte("a2")}, {"Ia", 3, []byte("a3")}, {"Ia", 2, []byte("a2 again")}, {"Ib", 2, []byte("b2")},
	} {
		if err := s.PutPeerHistory(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PeerHistories(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Identifier != "Ia" || got[0].Changes != 3 || string(got[0].History) != "a3" || got[1].Identifier != "Ib" {
		t.Fatalf("PeerHistories = %+v, want Ia with 3 changes, then Ib", got)
	}
	if got, _ := s.PeerHistories(ctx, 1); len(got) != 1 {
		t.Fatalf("PeerHistories(limit 1) = %d rows", len(got))
	}
}
