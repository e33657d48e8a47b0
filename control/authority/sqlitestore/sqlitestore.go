package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/identity"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is an authority.Store in a SQLite file.
type Store struct {
	db        *sql.DB
	closeOnce sync.Once
	closeErr  error
}

var _ authority.Store = (*Store)(nil)

// migrations bring a database from version i to i+1. Append only; never edit a released one.
// Times are unix microseconds; attributes are JSON objects.
var migrations = []string{
	`CREATE TABLE members (
		identifier TEXT PRIMARY KEY,
		attributes TEXT NOT NULL,
		added_by TEXT NOT NULL,
		added INTEGER NOT NULL
	);
	CREATE TABLE tickets (
		secret_hash BLOB PRIMARY KEY CHECK (length(secret_hash) = 32),
		attributes TEXT NOT NULL,
		relay TEXT NOT NULL,
		enroller INTEGER NOT NULL,
		uses_left INTEGER NOT NULL,
		expires INTEGER NOT NULL,
		created_by TEXT NOT NULL
	)`,
	`CREATE TABLE revocations (
		identifier TEXT PRIMARY KEY,
		revoked INTEGER NOT NULL,
		until INTEGER NOT NULL
	)`,
	`ALTER TABLE members ADD COLUMN ticket BLOB`,
}

// Open opens (creating, mode 0600) and migrates the store at path.
func Open(path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	// One connection per process: SQLite serialises writers anyway, and this keeps a
	// transaction from waiting on another of its own process's connections.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// BEGIN IMMEDIATE takes the write lock before reading the version, so that two
	// processes opening a new file at once do not both run the migrations.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	err = migrateLocked(ctx, conn)
	if err != nil {
		conn.ExecContext(ctx, `ROLLBACK`)
		return err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

func migrateLocked(ctx context.Context, conn *sql.Conn) error {
	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d): upgrade adjacent", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if version < len(migrations) {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
			return fmt.Errorf("set schema version %d: %w", len(migrations), err)
		}
	}
	return nil
}

// Close closes the database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// PutMember inserts m, or replaces the member with the same identifier, and lifts its
// revocation.
func (s *Store) PutMember(ctx context.Context, m authority.Member) error {
	if _, err := identity.ParseIdentifier(string(m.Identifier)); err != nil {
		return fmt.Errorf("sqlitestore: put member: %w", err)
	}
	attrs, err := authority.EncodeAttributes(m.Attributes)
	if err != nil {
		return fmt.Errorf("sqlitestore: put member %s: %w", m.Identifier, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO members (identifier, attributes, added_by, added, ticket) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (identifier) DO UPDATE SET attributes = excluded.attributes, added_by = excluded.added_by, added = excluded.added, ticket = excluded.ticket`,
			string(m.Identifier), attrs, string(m.AddedBy), m.Added.UnixMicro(), ticketColumn(m.Ticket)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE identifier = ?`, string(m.Identifier))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: put member %s: %w", m.Identifier, err)
	}
	return nil
}

// inTx runs fn in a transaction, committed if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// RevokeMember deletes the member r.Identifier and records r, in one transaction.
func (s *Store) RevokeMember(ctx context.Context, r authority.Revocation) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM members WHERE identifier = ?`, string(r.Identifier))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE until <= ?`, r.Revoked.UnixMicro()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO revocations (identifier, revoked, until) VALUES (?, ?, ?)
			ON CONFLICT (identifier) DO UPDATE SET revoked = excluded.revoked, until = excluded.until`,
			string(r.Identifier), r.Revoked.UnixMicro(), r.Until.UnixMicro())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlitestore: revoke member %s: %w", r.Identifier, err)
	}
	return n > 0, nil
}

// Revocations returns the revocations in force at now, sorted by identifier.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]authority.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT identifier, revoked, until FROM revocations WHERE until > ? ORDER BY identifier`, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list revocations: %w", err)
	}
	defer rows.Close()
	var all []authority.Revocation
	for rows.Next() {
		var (
			id             string
			revoked, until int64
		)
		if err := rows.Scan(&id, &revoked, &until); err != nil {
			return nil, fmt.Errorf("sqlitestore: list revocations: %w", err)
		}
		all = append(all, authority.Revocation{Identifier: identity.Identifier(id), Revoked: time.UnixMicro(revoked), Until: time.UnixMicro(until)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list revocations: %w", err)
	}
	return all, nil
}

const memberColumns = `identifier, attributes, added_by, added, ticket`

// ticketColumn is a member's ticket hash as stored: NULL for none.
func ticketColumn(h [32]byte) any {
	if h == ([32]byte{}) {
		return nil
	}
	return h[:]
}

type scanner interface{ Scan(dest ...any) error }

func scanMember(row scanner) (authority.Member, error) {
	var (
		m            authority.Member
		id, by, attr string
		added        int64
		ticket       []byte
	)
	if err := row.Scan(&id, &attr, &by, &added, &ticket); err != nil {
		return m, err
	}
	return authority.StoredMember(id, attr, by, time.UnixMicro(added), ticket)
}

// Member returns the member with identifier id, or authority.ErrNotFound.
func (s *Store) Member(ctx context.Context, id identity.Identifier) (authority.Member, error) {
	m, err := scanMember(s.db.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM members WHERE identifier = ?`, string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return authority.Member{}, fmt.Errorf("sqlitestore: member %s: %w", id, authority.ErrNotFound)
	}
	if err != nil {
		return authority.Member{}, fmt.Errorf("sqlitestore: member %s: %w", id, err)
	}
	return m, nil
}

// Members returns every member, sorted by identifier.
func (s *Store) Members(ctx context.Context) ([]authority.Member, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+memberColumns+` FROM members ORDER BY identifier`)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list members: %w", err)
	}
	defer rows.Close()
	var all []authority.Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list members: %w", err)
		}
		all = append(all, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list members: %w", err)
	}
	return all, nil
}

// DeleteMember deletes the member with identifier id, and reports whether there was one.
func (s *Store) DeleteMember(ctx context.Context, id identity.Identifier) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM members WHERE identifier = ?`, string(id))
	if err != nil {
		return false, fmt.Errorf("sqlitestore: delete member %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlitestore: delete member %s: %w", id, err)
	}
	return n > 0, nil
}

// AddTicket stores t, or returns authority.ErrTicketExists.
func (s *Store) AddTicket(ctx context.Context, t authority.Ticket) error {
	attrs, err := authority.EncodeAttributes(t.Attributes)
	if err != nil {
		return fmt.Errorf("sqlitestore: add ticket: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO tickets (secret_hash, attributes, relay, enroller, uses_left, expires, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (secret_hash) DO NOTHING`,
		t.SecretHash[:], attrs, t.Relay, t.Enroller, t.UsesLeft, t.Expires.UnixMicro(), string(t.CreatedBy))
	if err != nil {
		return fmt.Errorf("sqlitestore: add ticket: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlitestore: add ticket: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlitestore: add ticket: %w", authority.ErrTicketExists)
	}
	return nil
}

const ticketColumns = `secret_hash, attributes, relay, enroller, uses_left, expires, created_by`

// RedeemTicket atomically uses one use of the ticket whose secret hashes to h. The
// decrement is one UPDATE, which SQLite runs under the database's write lock, so it is
// atomic across connections and processes.
func (s *Store) RedeemTicket(ctx context.Context, h [32]byte, now time.Time) (authority.Ticket, error) {
	row := s.db.QueryRowContext(ctx, `UPDATE tickets SET uses_left = uses_left - 1
		WHERE secret_hash = ? AND uses_left > 0 AND expires > ?
		RETURNING `+ticketColumns, h[:], now.UnixMicro())
	t, err := scanTicket(row)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return authority.Ticket{}, fmt.Errorf("sqlitestore: redeem ticket: %w", err)
	}
	// Nothing redeemed: say why.
	t, err = scanTicket(s.db.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE secret_hash = ?`, h[:]))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = authority.ErrTicketUnknown
	case err != nil:
	case t.UsesLeft <= 0:
		err = authority.ErrTicketUsed
	default:
		err = fmt.Errorf("expired %v, now %v: %w", t.Expires.UTC(), now.UTC(), authority.ErrTicketExpired)
	}
	return authority.Ticket{}, fmt.Errorf("sqlitestore: redeem ticket: %w", err)
}

// DeleteTickets deletes every ticket made by createdBy and returns how many there were.
func (s *Store) DeleteTickets(ctx context.Context, createdBy identity.Identifier) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tickets WHERE created_by = ?`, string(createdBy))
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete tickets of %s: %w", createdBy, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete tickets of %s: %w", createdBy, err)
	}
	return int(n), nil
}

// VoidTicket takes every use left from the ticket whose secret hashes to h and returns how
// many it had.
func (s *Store) VoidTicket(ctx context.Context, h [32]byte) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT uses_left FROM tickets WHERE secret_hash = ? AND uses_left > 0`, h[:]).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			n = 0
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE tickets SET uses_left = 0 WHERE secret_hash = ?`, h[:])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: void ticket: %w", err)
	}
	return n, nil
}

func scanTicket(row scanner) (authority.Ticket, error) {
	var (
		t         authority.Ticket
		hash      []byte
		attrs, by string
		expires   int64
	)
	if err := row.Scan(&hash, &attrs, &t.Relay, &t.Enroller, &t.UsesLeft, &expires, &by); err != nil {
		return t, err
	}
	t.Expires = time.UnixMicro(expires)
	err := t.SetStored(hash, attrs, by)
	return t, err
}
