package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
	"github.com/adjacentnet/adjacent/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// cluster is a PostgreSQL server on which each store gets a new, empty database.
type cluster struct {
	dsn string
	mu  sync.Mutex
	n   int
}

func startCluster(t *testing.T) *cluster { return &cluster{dsn: pgtest.Start(t)} }

func (c *cluster) exec(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newDatabase returns the DSN of a new, empty database.
func (c *cluster) newDatabase(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("store%d", c.n)
	c.mu.Unlock()
	c.exec(t, c.dsn, "CREATE DATABASE "+name)
	u, err := url.Parse(c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := startCluster(t)
	storetest.Run(t, func(t *testing.T) authority.Store { return open(t, c.newDatabase(t)) })
}

func TestPostgres(t *testing.T) {
	c := startCluster(t)

	// Two hubs sharing one database: redemptions stay atomic across them, and what one
	// writes the other reads.
	t.Run("TwoStoresOneDatabase", func(t *testing.T) {
		dsn := c.newDatabase(t)
		a, b := open(t, dsn), open(t, dsn)
		defer a.Close()
		defer b.Close()
		storetest.ConcurrentRedeem(t, a, b)
		if err := a.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Member(t.Context(), storetest.ID(1)); err != nil {
			t.Errorf("Member through the other store: %v", err)
		}
	})

	// Hubs starting together on a new database migrate it once between them.
	t.Run("ConcurrentOpen", func(t *testing.T) {
		dsn := c.newDatabase(t)
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				s, err := Open(t.Context(), dsn)
				if err == nil {
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		dsn := c.newDatabase(t)
		s := open(t, dsn)
		if err := s.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1), Attributes: map[string]string{"role": "analyst"}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open(t, dsn)
		defer s.Close()
		m, err := s.Member(t.Context(), storetest.ID(1))
		if err != nil || m.Attributes["role"] != "analyst" {
			t.Errorf("Member after reopening = %+v, %v", m, err)
		}
	})

	t.Run("NewerSchemaRefused", func(t *testing.T) {
		dsn := c.newDatabase(t)
		open(t, dsn).Close()
		c.exec(t, dsn, `UPDATE `+Schema+`.schema_version SET version = 999`)
		s, err := Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open of a database with schema version 999 = nil error, want a refusal")
		}
		if !strings.Contains(err.Error(), "upgrade adjacent") {
			t.Errorf("Open = %v, want it to say to upgrade", err)
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		u, _ := url.Parse(c.dsn)
		u.Path = "/no_such_database"
		if s, err := Open(t.Context(), u.String()); err == nil {
			s.Close()
			t.Errorf("Open of a database that does not exist = nil error")
		}
	})

	t.Run("InvalidUTF8Refused", func(t *testing.T) {
		s := open(t, c.newDatabase(t))
		defer s.Close()
		err := s.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1), Attributes: map[string]string{"a": "\xff"}})
		if err == nil {
			t.Errorf("PutMember with an attribute that is not UTF-8 = nil, want an error")
		}
	})
}
