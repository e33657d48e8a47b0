package state

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInletsMigrate: a database from before transparent inlets keeps its inlets, which read
// back as classic ones, and takes transparent ones after the migration.
func TestInletsMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	old := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, "ADD COLUMN tun") }) // the schema before the tun columns
	for _, m := range migrations[:old] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, old))
	if _, err := db.Exec(`INSERT INTO inlets VALUES ('127.0.0.1:15432', '127.0.0.1:15432', '/project/acme/service/outlet', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ins, err := s.Inlets(ctx)
	if err != nil || len(ins) != 1 || ins[0].Tun || ins[0].Listen != "127.0.0.1:15432" {
		t.Fatalf("Inlets after migration = %+v, %v", ins, err)
	}
	tr := Inlet{Name: "db.bank.internal:5432", Listen: "100.127.0.1:5432", Route: "/x", Created: 2, Tun: true, Host: "db.bank.internal", HostsFile: "/etc/hosts"}
	if err := s.PutInlet(ctx, tr); err != nil {
		t.Fatal(err)
	}
	ins, err = s.Inlets(ctx)
	if err != nil || len(ins) != 2 || ins[1] != tr {
		t.Fatalf("Inlets = %+v, %v; want the second %+v", ins, err, tr)
	}
}
