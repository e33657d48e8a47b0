package state

import (
	"context"
	"fmt"
)

// Policy is a stored policy for a resource type ("echo", "relay", "tcp-outlet", "tcp-inlet")
// or for one named resource.
type Policy struct {
	Kind       string `json:"kind"` // "type" or "name"
	Resource   string `json:"resource"`
	Expression string `json:"expression"`
}

// PutPolicy stores a policy, replacing one for the same resource.
func (s *Store) PutPolicy(ctx context.Context, p Policy) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO policies (kind, resource, expression) VALUES (?, ?, ?)
		ON CONFLICT (kind, resource) DO UPDATE SET expression = excluded.expression`, p.Kind, p.Resource, p.Expression)
	if err != nil {
		return fmt.Errorf("state: store policy for %s %s: %w", p.Kind, p.Resource, err)
	}
	return nil
}

// DeletePolicy removes a policy; it reports whether there was one.
func (s *Store) DeletePolicy(ctx context.Context, kind, resource string) (bool, error) {
	r, err := s.db.ExecContext(ctx, `DELETE FROM policies WHERE kind = ? AND resource = ?`, kind, resource)
	if err != nil {
		return false, fmt.Errorf("state: delete policy: %w", err)
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

// Policies returns every stored policy.
func (s *Store) Policies(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, resource, expression FROM policies ORDER BY kind, resource`)
	if err != nil {
		return nil, fmt.Errorf("state: list policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		var p Policy
		if err := rows.Scan(&p.Kind, &p.Resource, &p.Expression); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AddRelay remembers a relay this node registered at its hub.
func (s *Store) AddRelay(ctx context.Context, name string, created int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO relays (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, created)
	if err != nil {
		return fmt.Errorf("state: store relay %s: %w", name, err)
	}
	return nil
}

// DeleteRelay forgets a relay.
func (s *Store) DeleteRelay(ctx context.Context, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM relays WHERE name = ?`, name)
	return err
}

// Relays returns the relays this node registered.
func (s *Store) Relays(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT name FROM relays ORDER BY name`)
}

// RelayOwner returns the identifier that holds a relay name at this hub, or "".
func (s *Store) RelayOwner(ctx context.Context, name string) (string, error) {
	v, err := s.strings(ctx, `SELECT owner FROM relay_owners WHERE name = ?`, name)
	if err != nil || len(v) == 0 {
		return "", err
	}
	return v[0], nil
}

// SetRelayOwner records who holds a relay name; an empty owner frees the name.
func (s *Store) SetRelayOwner(ctx context.Context, name, owner string) error {
	var err error
	if owner == "" {
		_, err = s.db.ExecContext(ctx, `DELETE FROM relay_owners WHERE name = ?`, name)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT INTO relay_owners (name, owner) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner`, name, owner)
	}
	if err != nil {
		return fmt.Errorf("state: relay owner of %s: %w", name, err)
	}
	return nil
}

func (s *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
