package sqlitestore

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/storetest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) authority.Store {
		return open(t, filepath.Join(t.TempDir(), "authority.db"))
	})
}

// TestTwoStoresOneFile is two processes sharing one file: redemptions stay atomic across
// them, and what one writes the other reads.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	storetest.ConcurrentRedeem(t, a, b)

	if err := a.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Member(t.Context(), storetest.ID(1)); err != nil {
		t.Errorf("Member through the other store: %v", err)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	open(t, path).Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode of %s = %v, want 0600", path, mode)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	s := open(t, path)
	if err := s.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1), Attributes: map[string]string{"role": "analyst"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	m, err := s.Member(t.Context(), storetest.ID(1))
	if err != nil || m.Attributes["role"] != "analyst" {
		t.Errorf("Member after reopening = %+v, %v", m, err)
	}
}

// TestRevocationsSurviveReopen: a hub restarting reads back the members it revoked.
func TestRevocationsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	s := open(t, path)
	now := time.Now()
	if err := s.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RevokeMember(t.Context(), authority.Revocation{Identifier: storetest.ID(1), Revoked: now, Until: now.Add(time.Hour)}); !ok || err != nil {
		t.Fatalf("RevokeMember = %v, %v", ok, err)
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	rs, err := s.Revocations(t.Context(), now)
	if err != nil || len(rs) != 1 || rs[0].Identifier != storetest.ID(1) {
		t.Errorf("Revocations after reopening = %v, %v, want %s", rs, err, storetest.ID(1))
	}
}

// TestUpgradeKeepsMembers: a database of the first schema (before revocations) is migrated
// in place.
func TestUpgradeKeepsMembers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0], `PRAGMA user_version = 1`,
		`INSERT INTO members (identifier, attributes, added_by, added) VALUES ('` + string(storetest.ID(1)) + `', '{"role":"analyst"}', '', 0)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := open(t, path)
	defer s.Close()
	if m, err := s.Member(t.Context(), storetest.ID(1)); err != nil || m.Attributes["role"] != "analyst" {
		t.Errorf("Member after the upgrade = %+v, %v", m, err)
	}
	if ok, err := s.RevokeMember(t.Context(), authority.Revocation{Identifier: storetest.ID(1), Revoked: time.Now(), Until: time.Now().Add(time.Hour)}); !ok || err != nil {
		t.Errorf("RevokeMember after the upgrade = %v, %v", ok, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authority.db")
	s := open(t, path)
	if _, err := s.db.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(path); err == nil {
		s.Close()
		t.Errorf("Open of a database with schema version 999 = nil error, want a refusal")
	}
}

func TestInvalidUTF8Refused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "authority.db"))
	defer s.Close()
	err := s.PutMember(t.Context(), authority.Member{Identifier: storetest.ID(1), Attributes: map[string]string{"a": "\xff"}})
	if err == nil {
		t.Errorf("PutMember with an attribute that is not UTF-8 = nil, want an error")
	}
}
