package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is an open state database.
type Store struct {
	db *sql.DB
}

// migrations bring a database from version i to i+1. Append only; never edit a released one.
var migrations = []string{
	`CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE TABLE identities (
		name TEXT PRIMARY KEY,
		identifier TEXT NOT NULL UNIQUE,
		history BLOB NOT NULL,
		vault_key TEXT NOT NULL
	)`,
	`CREATE TABLE policies (
		kind TEXT NOT NULL CHECK (kind IN ('type', 'name')),
		resource TEXT NOT NULL,
		expression TEXT NOT NULL,
		PRIMARY KEY (kind, resource)
	);
	CREATE TABLE relays (name TEXT PRIMARY KEY, created INTEGER NOT NULL);
	CREATE TABLE relay_owners (name TEXT PRIMARY KEY, owner TEXT NOT NULL)`,
	`CREATE TABLE outlets (name TEXT PRIMARY KEY, target TEXT NOT NULL, created INTEGER NOT NULL);
	CREATE TABLE inlets (name TEXT PRIMARY KEY, listen TEXT NOT NULL, route TEXT NOT NULL, created INTEGER NOT NULL)`,
	// Transparent inlets: listen is the virtual address:port on the TUN device; host the name
	// mapped to it in hosts_file ('' for an address given as such).
	`ALTER TABLE inlets ADD COLUMN tun INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE inlets ADD COLUMN host TEXT NOT NULL DEFAULT '';
	ALTER TABLE inlets ADD COLUMN hosts_file TEXT NOT NULL DEFAULT ''`,
	// The longest identity history seen of each peer that rotated its key.
	`CREATE TABLE peer_histories (identifier TEXT PRIMARY KEY, changes INTEGER NOT NULL, history BLOB NOT NULL)`,
	// Packet-mode (raw) transparent inlets carry the clients' own TCP segments.
	`ALTER TABLE inlets ADD COLUMN raw INTEGER NOT NULL DEFAULT 0`,
}

// Open opens (creating, mode 0600) and migrates the database at path.
func Open(path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway and this avoids SQLITE_BUSY
	s := &Store{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d): upgrade adjacent", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Setting returns the value stored under key, and whether there is one.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("state: read setting %s: %w", key, err)
	}
	return v, true, nil
}

// SetSetting stores value under key; an empty value deletes it.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	var err error
	if value == "" {
		_, err = s.db.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
	} else {
		_, err = s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	}
	if err != nil {
		return fmt.Errorf("state: write setting %s: %w", key, err)
	}
	return nil
}
