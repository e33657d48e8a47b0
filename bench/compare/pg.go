package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// pgPort is where PostgreSQL listens in B, on all its addresses: the tunnels forward to
// 127.0.0.1:pgPort, raw TCP, wireguard-go and Nebula reach it on B's own address.
const pgPort = 5432

// The pgbench workload of issues 13 and 15: select-only, 8 clients on 2 threads, against
// the default scale (100,000 accounts), each client keeping its connection for the run.
const (
	pgClients = 8
	pgThreads = 2
)

// postgres is one PostgreSQL server of the run, in a topology's B, with pgbench's tables
// made once (pgbench -i); every mode of that topology then runs pgbench -S against it.
type postgres struct {
	ns  *netns.Namespace
	bin string // the server installation's bin directory: postgres, initdb, pgbench
}

// startPostgres runs a server in ns for the rest of the run (its process registered on s,
// its data in a directory of its own, removed on s's close) and fills pgbench's tables.
func (b *bench) startPostgres(ctx context.Context, s *stage, label string, ns *netns.Namespace) (*postgres, error) {
	bin, err := pgtest.Binaries()
	if err != nil {
		return nil, fmt.Errorf("%v (Debian package postgresql)", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user (Debian package postgresql makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Outside the scratch directory, which only root may enter.
	dir, err := os.MkdirTemp("", "adjacent-bench-pg-")
	if err != nil {
		return nil, err
	}
	s.onClose(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, lastOf(string(out)))
	}
	// initdb trusts loopback only; raw TCP, wireguard-go and Nebula come from A's addresses.
	// Only the run's namespaces reach these servers.
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = hba.WriteString("host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n")
	if cerr := hba.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pg_hba.conf: %w", err)
	}
	// As the tests' servers: durability off, since nothing here is worth keeping.
	p, err := s.start(ns, label, nil, "setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--clear-groups",
		filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "*", "-p", strconv.Itoa(pgPort),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "logging_collector=off", "-c", "log_min_messages=warning")
	if err != nil {
		return nil, err
	}
	pg := &postgres{ns: ns, bin: bin}
	if err := pg.waitReady(ctx, p); err != nil {
		return nil, err
	}
	if out, err := pg.pgbench(ctx, time.Minute, "127.0.0.1", strconv.Itoa(pgPort), "-i", "-q"); err != nil {
		return nil, fmt.Errorf("pgbench -i: %v: %s", err, lastOf(out))
	}
	return pg, nil
}

// waitReady waits until the server accepts connections on its TCP port (pg_isready), or
// p exits.
func (pg *postgres) waitReady(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := pg.ns.Exec(ctx, filepath.Join(pg.bin, "pg_isready"), "-q", "-U", "postgres", "-h", "127.0.0.1", "-p", strconv.Itoa(pgPort)); err == nil {
			return nil
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("postgres did not accept connections within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pgbench runs pgbench from pg's installation in ns against host:port, as the superuser
// on database postgres, without TLS or GSS (the server has neither: no extra round trips).
func (pg *postgres) pgbenchIn(ctx context.Context, ns *netns.Namespace, limit time.Duration, host, port string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := ns.CommandContext(ctx, filepath.Join(pg.bin, "pgbench"), append(args, "postgres")...)
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=postgres",
		"PGSSLMODE=disable", "PGGSSENCMODE=disable", "PGCONNECT_TIMEOUT=10")
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		return string(out), fmt.Errorf("no result within %v", limit)
	}
	return string(out), err
}

// pgbench is pgbenchIn in the server's own namespace.
func (pg *postgres) pgbench(ctx context.Context, limit time.Duration, host, port string, args ...string) (string, error) {
	return pg.pgbenchIn(ctx, pg.ns, limit, host, port, args...)
}

var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// measureTPS runs pgbench -S with pgClients clients through ep.pg for the configured
// seconds and returns the transactions per second (without the initial connections).
func (b *bench) measureTPS(ctx context.Context, pg *postgres, ep endpoints) (float64, error) {
	if ep.pg == "" {
		return 0, errors.New("the mode has no PostgreSQL endpoint")
	}
	host, port, _ := strings.Cut(ep.pg, ":")
	out, err := pg.pgbenchIn(ctx, ep.ns, time.Duration(b.cfg.seconds+30)*time.Second, host, port,
		"-S", "-n", "-c", strconv.Itoa(pgClients), "-j", strconv.Itoa(pgThreads), "-T", strconv.Itoa(b.cfg.seconds))
	if err != nil {
		return 0, fmt.Errorf("pgbench -S: %v: %s", err, lastOf(out))
	}
	m := tpsLine.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -S: no tps in %q", lastOf(out))
	}
	return strconv.ParseFloat(m[1], 64)
}

// lastOf is the last two lines of a command's output, where pgbench and initdb say what
// failed and why, on one line.
func lastOf(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Join(lines[max(0, len(lines)-2):], " / ")
}
