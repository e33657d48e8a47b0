package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSettingsPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "listen", "127.0.0.1:4000"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, err := s.Setting(ctx, "listen"); v != "127.0.0.1:4000" || !ok || err != nil {
		t.Fatalf("Setting(listen) = %q, %v, %v after reopen", v, ok, err)
	}
	if err := s.SetSetting(ctx, "listen", ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Setting(ctx, "listen"); ok {
		t.Fatal("empty value did not delete the setting")
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Exec(`PRAGMA user_version = 999`)
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}
