package pgtest

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestBinaries(t *testing.T) {
	dir, err := Binaries()
	if err != nil {
		t.Skipf("%v; `make test` installs them (Debian package postgresql)", err)
	}
	for _, name := range []string{"postgres", "initdb", "psql"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("Binaries() = %s, without %s: %v", dir, name, err)
		}
	}
}

func TestStart(t *testing.T) {
	var dsn string
	t.Run("server", func(t *testing.T) {
		start := time.Now()
		dsn = Start(t)
		t.Logf("started in %v: %s", time.Since(start), dsn)
		ctx := t.Context()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to %s: %v", dsn, err)
		}
		defer conn.Close(context.Background())
		var db, fsync string
		if err := conn.QueryRow(ctx, `SELECT current_database(), current_setting('fsync')`).Scan(&db, &fsync); err != nil {
			t.Fatal(err)
		}
		if db != Database || fsync != "off" {
			t.Errorf("database %q with fsync %s, want %q with fsync off", db, fsync, Database)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('ok')`); err != nil {
			t.Errorf("write: %v", err)
		}
	})
	if dsn == "" {
		return
	}
	// The server is gone once its test has ended.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its test ended", u.Host)
	}
}

// TestStartTwo runs two servers at once, as parallel tests do.
func TestStartTwo(t *testing.T) {
	for range 2 {
		t.Run("server", func(t *testing.T) {
			t.Parallel()
			dsn := Start(t)
			conn, err := pgx.Connect(t.Context(), dsn)
			if err != nil {
				t.Fatalf("connect to %s: %v", dsn, err)
			}
			conn.Close(context.Background())
		})
	}
}

// TestStopStart: a stopped server refuses connections; started again it has its data.
func TestStopStart(t *testing.T) {
	srv := StartServer(t, Options{})
	ctx := t.Context()
	query := func() (string, error) {
		conn, err := pgx.Connect(ctx, srv.DSN())
		if err != nil {
			return "", err
		}
		defer conn.Close(context.Background())
		var v string
		err = conn.QueryRow(ctx, `SELECT v FROM t`).Scan(&v)
		return v, err
	}
	conn, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if v, err := query(); err == nil {
		t.Fatalf("query on a stopped server = %q, want an error", v)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if v, err := query(); err != nil || v != "kept" {
		t.Fatalf("query after Start = %q, %v; want %q", v, err, "kept")
	}
}
