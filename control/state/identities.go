package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Identity is a named identity of this home: its encoded change history and the vault key
// that holds its current primary key.
type Identity struct {
	Name       string
	Identifier string
	History    []byte
	VaultKey   string
}

// ErrNotFound means no row matched.
var ErrNotFound = errors.New("not found")

// PutIdentity inserts or replaces an identity.
func (s *Store) PutIdentity(ctx context.Context, id Identity) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO identities (name, identifier, history, vault_key) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET identifier = excluded.identifier, history = excluded.history, vault_key = excluded.vault_key`,
		id.Name, id.Identifier, id.History, id.VaultKey)
	if err != nil {
		return fmt.Errorf("state: store identity %s: %w", id.Name, err)
	}
	return nil
}

// Identity returns the identity called name, or ErrNotFound.
func (s *Store) Identity(ctx context.Context, name string) (Identity, error) {
	id := Identity{Name: name}
	err := s.db.QueryRowContext(ctx, `SELECT identifier, history, vault_key FROM identities WHERE name = ?`, name).
		Scan(&id.Identifier, &id.History, &id.VaultKey)
	if errors.Is(err, sql.ErrNoRows) {
		return Identity{}, fmt.Errorf("state: identity %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("state: read identity %s: %w", name, err)
	}
	return id, nil
}

// Identities returns every identity, by name.
func (s *Store) Identities(ctx context.Context) ([]Identity, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, identifier, history, vault_key FROM identities ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("state: list identities: %w", err)
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		var id Identity
		if err := rows.Scan(&id.Name, &id.Identifier, &id.History, &id.VaultKey); err != nil {
			return nil, fmt.Errorf("state: list identities: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
