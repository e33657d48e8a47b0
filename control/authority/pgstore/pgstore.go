package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/jackc/pgx/v5"
)

// Schema is the PostgreSQL schema that holds the store's tables.
const Schema = "adjacent_authority"

// maxConns bounds the connections one Store opens.
const maxConns = 8

// migrationLock is the key of the advisory lock held while migrating, so that hubs starting
// together on a new database do not both create the tables.
const migrationLock = 0x61646a6163656e74 // "adjacent"

// Store is an authority.Store in PostgreSQL.
type Store struct {
	pool      *pool
	closeOnce sync.Once
}

var _ authority.Store = (*Store)(nil)

// migrations bring the schema from version i to i+1. Append only; never edit a released one.
// Attributes are JSON objects kept as text (not jsonb, which cannot hold "\u0000").
var migrations = []string{
	`CREATE TABLE ` + Schema + `.members (
		identifier text COLLATE "C" PRIMARY KEY,
		attributes text NOT NULL,
		added_by text NOT NULL,
		added timestamptz NOT NULL
	);
	CREATE TABLE ` + Schema + `.tickets (
		secret_hash bytea PRIMARY KEY CHECK (octet_length(secret_hash) = 32),
		attributes text NOT NULL,
		relay text NOT NULL,
		enroller boolean NOT NULL,
		uses_left bigint NOT NULL,
		expires timestamptz NOT NULL,
		created_by text NOT NULL
	)`,
	`CREATE TABLE ` + Schema + `.revocations (
		identifier text COLLATE "C" PRIMARY KEY,
		revoked timestamptz NOT NULL,
		until timestamptz NOT NULL
	)`,
	`ALTER TABLE ` + Schema + `.members ADD COLUMN ticket bytea`,
}

// Open connects to the PostgreSQL database at dsn (a URL or key=value connection string),
// and creates or migrates the store's schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "adjacent"
	}
	s := &Store{pool: newPool(cfg, maxConns)}
	if err := s.with(ctx, func(c *pgx.Conn) error { return migrate(ctx, c) }); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgstore: %s on %s:%d: %w", cfg.Database, cfg.Host, cfg.Port, err)
	}
	return s, nil
}

func migrate(ctx context.Context, c *pgx.Conn) error {
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema+`;
			CREATE TABLE IF NOT EXISTS `+Schema+`.schema_version (
				one boolean PRIMARY KEY DEFAULT true CHECK (one),
				version integer NOT NULL
			)`); err != nil {
			return fmt.Errorf("create schema %s: %w", Schema, err)
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM `+Schema+`.schema_version`).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program knows (%d): upgrade adjacent", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if version < len(migrations) {
			if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.schema_version (version) VALUES ($1)
				ON CONFLICT (one) DO UPDATE SET version = excluded.version`, len(migrations)); err != nil {
				return fmt.Errorf("set schema version %d: %w", len(migrations), err)
			}
		}
		return nil
	})
}

// with runs fn with a connection of the pool.
func (s *Store) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.pool.release(c)
	return fn(c)
}

// Close closes the store's connections. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.close)
	return nil
}

// PutMember inserts m, or replaces the member with the same identifier, and lifts its
// revocation.
func (s *Store) PutMember(ctx context.Context, m authority.Member) error {
	if _, err := identity.ParseIdentifier(string(m.Identifier)); err != nil {
		return fmt.Errorf("pgstore: put member: %w", err)
	}
	attrs, err := authority.EncodeAttributes(m.Attributes)
	if err != nil {
		return fmt.Errorf("pgstore: put member %s: %w", m.Identifier, err)
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.members (identifier, attributes, added_by, added, ticket) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes, added_by = excluded.added_by, added = excluded.added, ticket = excluded.ticket`,
				string(m.Identifier), attrs, string(m.AddedBy), m.Added, ticketColumn(m.Ticket)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM `+Schema+`.revocations WHERE identifier = $1`, string(m.Identifier))
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("pgstore: put member %s: %w", m.Identifier, err)
	}
	return nil
}

const memberColumns = `identifier, attributes, added_by, added, ticket`

// ticketColumn is a member's ticket hash as stored: NULL for none.
func ticketColumn(h [32]byte) []byte {
	if h == ([32]byte{}) {
		return nil
	}
	return h[:]
}

func scanMember(row pgx.Row) (authority.Member, error) {
	var (
		m            authority.Member
		id, by, attr string
		ticket       []byte
	)
	if err := row.Scan(&id, &attr, &by, &m.Added, &ticket); err != nil {
		return m, err
	}
	return authority.StoredMember(id, attr, by, m.Added, ticket)
}

// Member returns the member with identifier id, or authority.ErrNotFound.
func (s *Store) Member(ctx context.Context, id identity.Identifier) (authority.Member, error) {
	var m authority.Member
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		m, err = scanMember(c.QueryRow(ctx, `SELECT `+memberColumns+` FROM `+Schema+`.members WHERE identifier = $1`, string(id)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return authority.Member{}, fmt.Errorf("pgstore: member %s: %w", id, authority.ErrNotFound)
	}
	if err != nil {
		return authority.Member{}, fmt.Errorf("pgstore: member %s: %w", id, err)
	}
	return m, nil
}

// Members returns every member, sorted by identifier.
func (s *Store) Members(ctx context.Context) ([]authority.Member, error) {
	var all []authority.Member
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+memberColumns+` FROM `+Schema+`.members ORDER BY identifier`)
		if err != nil {
			return err
		}
		all, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (authority.Member, error) { return scanMember(row) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list members: %w", err)
	}
	return all, nil
}

// DeleteMember deletes the member with identifier id, and reports whether there was one.
func (s *Store) DeleteMember(ctx context.Context, id identity.Identifier) (bool, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `DELETE FROM `+Schema+`.members WHERE identifier = $1`, string(id))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: delete member %s: %w", id, err)
	}
	return n > 0, nil
}

// RevokeMember deletes the member r.Identifier and records r, in one transaction.
func (s *Store) RevokeMember(ctx context.Context, r authority.Revocation) (bool, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM `+Schema+`.members WHERE identifier = $1`, string(r.Identifier))
			if n = tag.RowsAffected(); err != nil || n == 0 {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+Schema+`.revocations WHERE until <= $1`, r.Revoked); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+Schema+`.revocations (identifier, revoked, until) VALUES ($1, $2, $3)
				ON CONFLICT (identifier) DO UPDATE SET revoked = excluded.revoked, until = excluded.until`,
				string(r.Identifier), r.Revoked, r.Until)
			return err
		})
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: revoke member %s: %w", r.Identifier, err)
	}
	return n > 0, nil
}

// Revocations returns the revocations in force at now, sorted by identifier.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]authority.Revocation, error) {
	var all []authority.Revocation
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT identifier, revoked, until FROM `+Schema+`.revocations WHERE until > $1 ORDER BY identifier`, now)
		if err != nil {
			return err
		}
		all, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (authority.Revocation, error) {
			var (
				r  authority.Revocation
				id string
			)
			err := row.Scan(&id, &r.Revoked, &r.Until)
			r.Identifier = identity.Identifier(id)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list revocations: %w", err)
	}
	return all, nil
}

// AddTicket stores t, or returns authority.ErrTicketExists.
func (s *Store) AddTicket(ctx context.Context, t authority.Ticket) error {
	attrs, err := authority.EncodeAttributes(t.Attributes)
	if err != nil {
		return fmt.Errorf("pgstore: add ticket: %w", err)
	}
	var n int64
	err = s.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `INSERT INTO `+Schema+`.tickets (secret_hash, attributes, relay, enroller, uses_left, expires, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (secret_hash) DO NOTHING`,
			t.SecretHash[:], attrs, t.Relay, t.Enroller, int64(t.UsesLeft), t.Expires, string(t.CreatedBy))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: add ticket: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("pgstore: add ticket: %w", authority.ErrTicketExists)
	}
	return nil
}

const ticketColumns = `secret_hash, attributes, relay, enroller, uses_left, expires, created_by`

// RedeemTicket atomically uses one use of the ticket whose secret hashes to h. The
// decrement is one UPDATE: concurrent redeemers, on any connection or host, queue on the
// row's lock and each re-checks the condition on the row as the one before left it.
func (s *Store) RedeemTicket(ctx context.Context, h [32]byte, now time.Time) (authority.Ticket, error) {
	var t authority.Ticket
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		t, err = scanTicket(c.QueryRow(ctx, `UPDATE `+Schema+`.tickets SET uses_left = uses_left - 1
			WHERE secret_hash = $1 AND uses_left > 0 AND expires > $2
			RETURNING `+ticketColumns, h[:], now))
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Nothing redeemed: say why.
		t, err = scanTicket(c.QueryRow(ctx, `SELECT `+ticketColumns+` FROM `+Schema+`.tickets WHERE secret_hash = $1`, h[:]))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return authority.ErrTicketUnknown
		case err != nil:
			return err
		case t.UsesLeft <= 0:
			return authority.ErrTicketUsed
		}
		return fmt.Errorf("expired %v, now %v: %w", t.Expires.UTC(), now.UTC(), authority.ErrTicketExpired)
	})
	if err != nil {
		return authority.Ticket{}, fmt.Errorf("pgstore: redeem ticket: %w", err)
	}
	return t, nil
}

// DeleteTickets deletes every ticket made by createdBy and returns how many there were.
func (s *Store) DeleteTickets(ctx context.Context, createdBy identity.Identifier) (int, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `DELETE FROM `+Schema+`.tickets WHERE created_by = $1`, string(createdBy))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete tickets of %s: %w", createdBy, err)
	}
	return int(n), nil
}

// VoidTicket takes every use left from the ticket whose secret hashes to h and returns how
// many it had.
func (s *Store) VoidTicket(ctx context.Context, h [32]byte) (int, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, `UPDATE `+Schema+`.tickets t SET uses_left = 0 FROM `+Schema+`.tickets old
			WHERE t.secret_hash = $1 AND old.secret_hash = t.secret_hash AND t.uses_left > 0 RETURNING old.uses_left`, h[:]).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			n, err = 0, nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: void ticket: %w", err)
	}
	return int(n), nil
}

func scanTicket(row pgx.Row) (authority.Ticket, error) {
	var (
		t         authority.Ticket
		hash      []byte
		attrs, by string
		uses      int64
	)
	if err := row.Scan(&hash, &attrs, &t.Relay, &t.Enroller, &uses, &t.Expires, &by); err != nil {
		return t, err
	}
	t.UsesLeft = int(uses)
	err := t.SetStored(hash, attrs, by)
	return t, err
}
