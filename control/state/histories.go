package state

import (
	"context"
	"fmt"
)

// PeerHistory is the longest identity history this node has seen of a peer: its encoding and
// its number of changes.
type PeerHistory struct {
	Identifier string
	Changes    int
	History    []byte
}

// PutPeerHistory stores h unless a history of the same peer with at least as many changes is
// stored already, so that writes arriving out of order never shorten what is known.
func (s *Store) PutPeerHistory(ctx context.Context, h PeerHistory) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO peer_histories (identifier, changes, history) VALUES (?, ?, ?)
		ON CONFLICT (identifier) DO UPDATE SET changes = excluded.changes, history = excluded.history
		WHERE excluded.changes > peer_histories.changes`, h.Identifier, h.Changes, h.History)
	if err != nil {
		return fmt.Errorf("state: store the history of %s: %w", h.Identifier, err)
	}
	return nil
}

// PeerHistories returns up to limit stored peer histories, longest first.
func (s *Store) PeerHistories(ctx context.Context, limit int) ([]PeerHistory, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT identifier, changes, history FROM peer_histories ORDER BY changes DESC, identifier LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("state: read peer histories: %w", err)
	}
	defer rows.Close()
	var out []PeerHistory
	for rows.Next() {
		var h PeerHistory
		if err := rows.Scan(&h.Identifier, &h.Changes, &h.History); err != nil {
			return nil, fmt.Errorf("state: read peer histories: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
