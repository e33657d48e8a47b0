package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// tools builds, once per test run, the adjacent and blast binaries the namespace tests run:
// real binaries without the race detector, as users would run them.
var tools = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "adjacent-tools-")
	if err != nil {
		return "", err
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for pkg, name := range map[string]string{".": "adjacent", "../../internal/cmd/blast": "blast"} {
		out, err := exec.Command(gobin, "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir, nil
})

// world is the story's topology: three namespaces where bank and analysis reach only the
// hub, which reaches both, at 10.77.0.1 on its loopback.
type world struct {
	t                   *testing.T
	bin                 string
	hub, bank, analysis *netns.NS
	hubHome, bankHome   string
	analysisHome        string
}

const hubIP = "10.77.0.1"

func newWorld(t *testing.T) *world {
	netns.Require(t)
	bin, err := tools()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, bin: bin}
	w.hub, w.bank, w.analysis = netns.New(t, "hub"), netns.New(t, "bank"), netns.New(t, "analysis")
	netns.Link(t, w.hub, "10.77.1.1/24", w.bank, "10.77.1.2/24")
	netns.Link(t, w.hub, "10.77.2.1/24", w.analysis, "10.77.2.2/24")
	w.hub.Run("ip", "addr", "add", hubIP+"/32", "dev", "lo")
	w.bank.Run("ip", "route", "add", hubIP+"/32", "via", "10.77.1.1")
	w.analysis.Run("ip", "route", "add", hubIP+"/32", "via", "10.77.2.1")
	w.hubHome, w.bankHome, w.analysisHome = w.home(), w.home(), w.home()
	return w
}

// home is a fresh home whose node is stopped at the end.
func (w *world) home() string {
	h := filepath.Join(w.t.TempDir(), "home")
	w.t.Cleanup(func() { exec.Command(filepath.Join(w.bin, "adjacent"), "--home", h, "node", "stop").Run() })
	return h
}

// adj runs the adjacent CLI in ns on home and returns its output; it fails the test on error.
func (w *world) adj(ns *netns.NS, home string, args ...string) string {
	w.t.Helper()
	out, err := w.try(ns, home, args...)
	if err != nil {
		w.t.Fatalf("adjacent %s (in %s): %v", strings.Join(args, " "), ns, err)
	}
	return out
}

func (w *world) try(ns *netns.NS, home string, args ...string) (string, error) {
	cmd := ns.Command(filepath.Join(w.bin, "adjacent"), append([]string{"--home", home}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// blast runs the blast tool in ns with a timeout.
func (w *world) blast(ns *netns.NS, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, filepath.Join(w.bin, "blast")}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// psql runs a query in ns against 127.0.0.1:port.
func (w *world) psql(ns *netns.NS, port int, query string) (string, error) {
	bin, err := pgtest.Binaries()
	if err != nil {
		w.t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, filepath.Join(bin, "psql"),
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--username", pgtest.User, "--dbname", pgtest.Database,
		"--no-align", "--tuples-only", "--command", query)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// The rows the story's query returns from the bank's database.
const (
	query = "SELECT owner FROM accounts ORDER BY id"
	rows  = "ada\ngrace\nlinus"
)

// project is the story's start: PostgreSQL on the bank's loopback with the accounts table,
// then join.
func (w *world) project() {
	t := w.t
	dsn := pgtest.StartWith(t, pgtest.Options{Namespace: w.bank.Name, Port: 5432})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, owner text); INSERT INTO accounts VALUES (1, 'ada'), (2, 'grace'), (3, 'linus')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	w.join()
}

// join creates the acme project on the hub, with extra project create flags, enrolls the
// bank with the postgres relay and an outlet to port 5432, and enrolls analysis as an
// analyst.
func (w *world) join(flags ...string) {
	w.adj(w.hub, w.hubHome, append([]string{"project", "create", "acme", "--listen", "0.0.0.0:4000", "--public-address", hubIP + ":4000"}, flags...)...)
	bankTicket := strings.TrimSpace(w.adj(w.hub, w.hubHome, "project", "ticket", "--relay", "postgres"))
	analysisTicket := strings.TrimSpace(w.adj(w.hub, w.hubHome, "project", "ticket", "--attribute", "role=analyst"))
	w.adj(w.bank, w.bankHome, "enroll", bankTicket)
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "5432")
	w.adj(w.bank, w.bankHome, "relay", "create", "postgres")
	w.adj(w.analysis, w.analysisHome, "enroll", analysisTicket)
}

// transfer starts a long exchange from analysis to addr. The channel reports how it ended:
// nil when the client saw a reset or a broken pipe, an error when it completed or ended any
// other way, a clean end of stream among them.
func (w *world) transfer(addr string) <-chan error {
	result := make(chan error, 1)
	go func() {
		out, err := w.blast(w.analysis, 2*time.Minute, "exchange", "-to", addr, "-bytes", strconv.Itoa(64<<30))
		if err == nil {
			err = fmt.Errorf("the transfer completed: %s", out)
		} else if !strings.Contains(out, "reset") && !strings.Contains(out, "broken pipe") {
			err = fmt.Errorf("the client did not see a reset: %s", out)
		} else {
			err = nil
		}
		result <- err
	}()
	return result
}

// refused checks that a new connection from analysis to addr is refused (closed or reset)
// within d, rather than held while the inlet waits for a path.
func (w *world) refused(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	start := time.Now()
	out, err := w.blast(w.analysis, time.Minute, "exchange", "-to", addr, "-bytes", strconv.Itoa(1<<20))
	took := time.Since(start)
	if err == nil {
		t.Fatalf("a new connection to %s went through: %s", addr, out)
	}
	if took > d {
		t.Fatalf("a new connection to %s was refused after %v, want within %v: %s", addr, took.Round(time.Millisecond), d, out)
	}
	t.Logf("a new connection was refused after %v: %s", took.Round(time.Millisecond), out)
}

// killHubMidTransfer kills the hub while analysis moves data to addr through it: the client
// must see a reset or a broken pipe, never a clean end of stream. The hub is then restarted.
func (w *world) killHubMidTransfer(t *testing.T, addr string) {
	t.Helper()
	result := w.transfer(addr)
	time.Sleep(2 * time.Second)
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(w.hubHome, "node.pid"))))
	if pid == 0 {
		t.Fatal("no hub pid")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	w.adj(w.hub, w.hubHome, "node", "create")
}

// TestStory is DESIGN.md §1 for real: a PostgreSQL server in the bank namespace, psql in the
// analysis namespace, a hub between them, and everything the story promises.
func TestStory(t *testing.T) {
	w := newWorld(t)
	w.project()
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "15432", "--via", "postgres")

	t.Run("psql through the portal", func(t *testing.T) {
		out, err := w.psql(w.analysis, 15432, query)
		if err != nil || out != rows {
			t.Fatalf("psql = %q, %v; want %q", out, err, rows)
		}
	})

	t.Run("nothing listens outside loopback; the bank cannot reach analysis", func(t *testing.T) {
		for _, ns := range []*netns.NS{w.bank, w.analysis} {
			for _, line := range strings.Split(strings.TrimSpace(ns.Run("ss", "-ltnH")), "\n") {
				f := strings.Fields(line)
				if len(f) < 4 {
					continue
				}
				local := f[3]
				if !strings.HasPrefix(local, "127.") && !strings.HasPrefix(local, "[::1]") {
					t.Errorf("%s listens on %s", ns, local)
				}
			}
		}
		err := w.bank.Command("bash", "-c", "timeout 3 bash -c 'echo > /dev/tcp/10.77.2.2/15432'").Run()
		if err == nil {
			t.Fatal("the bank opened a connection into the analysis network")
		}
	})

	t.Run("denied: another project, and attributes failing --allow", func(t *testing.T) {
		// A strict outlet only admins may use; analysis has role=analyst.
		w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "5432", "--from", "strict", "--allow", `(= subject.role "admin")`)
		// The create checks the path: the outlet's refusal is its error; --no-wait creates it.
		if out, err := w.try(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "15433", "--via", "postgres", "--to", "strict"); err == nil || !strings.Contains(err.Error(), "denied by the outlet's policy") {
			t.Fatalf("tcp-inlet create to an outlet whose policy the member fails = %q, %v", out, err)
		}
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "15433", "--via", "postgres", "--to", "strict", "--no-wait")
		if out, err := w.psql(w.analysis, 15433, query); err == nil {
			t.Fatalf("psql through an outlet whose policy the member fails = %q", out)
		}
		log, _ := os.ReadFile(filepath.Join(w.bankHome, "node.log"))
		if !strings.Contains(string(log), "portal connection denied") || !strings.Contains(string(log), "subject.role") {
			t.Fatalf("the outlet did not log the denial with its reason:\n%s", log)
		}
		// A node of another project, in the analysis network, aiming at the same relay.
		otherHub, stranger := w.home(), w.home()
		w.adj(w.hub, otherHub, "project", "create", "other", "--listen", "0.0.0.0:4001", "--public-address", hubIP+":4001")
		w.adj(w.analysis, stranger, "enroll", strings.TrimSpace(w.adj(w.hub, otherHub, "project", "ticket")))
		strangerRoute := "/ip4/" + hubIP + "/tcp/4000/secure/api/service/forward_to_postgres/secure/api/service/outlet"
		if out, err := w.try(w.analysis, stranger, "tcp-inlet", "create", "--from", "15434", "--to", strangerRoute); err == nil || !strings.Contains(err.Error(), "not a trusted authority") {
			t.Fatalf("tcp-inlet create from another project's node = %q, %v", out, err)
		}
		w.adj(w.analysis, stranger, "tcp-inlet", "create", "--from", "15434", "--to", strangerRoute, "--no-wait")
		if out, err := w.psql(w.analysis, 15434, query); err == nil {
			t.Fatalf("psql from another project's node = %q", out)
		}
	})

	// The bank serves blast on its loopback behind a second outlet.
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")

	t.Run("1 GiB each way arrives byte-exact", func(t *testing.T) {
		out, err := w.blast(w.analysis, 5*time.Minute, "exchange", "-to", "127.0.0.1:17000", "-bytes", strconv.Itoa(1<<30))
		if err != nil || !strings.HasPrefix(out, "ok") {
			t.Fatalf("blast exchange: %v: %s", err, out)
		}
		t.Log(out)
	})

	t.Run("half-close: 8 MiB up, then 1 MiB answer and end of stream", func(t *testing.T) {
		out, err := w.blast(w.analysis, time.Minute, "halfclose", "-to", "127.0.0.1:17000")
		if err != nil || out != "ok halfclose" {
			t.Fatalf("blast halfclose: %v: %s", err, out)
		}
	})

	t.Run("hub restarted while idle", func(t *testing.T) {
		w.adj(w.hub, w.hubHome, "node", "stop")
		w.adj(w.hub, w.hubHome, "node", "create")
		start := time.Now()
		out, err := w.psql(w.analysis, 15432, query)
		if err != nil || out != rows {
			t.Fatalf("psql after the hub restarted = %q, %v\nanalysis log:\n%s", out, err, tail(readFile(filepath.Join(w.analysisHome, "node.log")), 8))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the portal served again after %v, want within 10s", d)
		}
	})

	t.Run("hub killed mid-transfer: an error, never a clean end of stream", func(t *testing.T) {
		w.killHubMidTransfer(t, "127.0.0.1:17000")
	})

	t.Run("restarted bank and analysis nodes bring back outlet, relay and inlet", func(t *testing.T) {
		for _, n := range []struct {
			ns   *netns.NS
			home string
		}{{w.bank, w.bankHome}, {w.analysis, w.analysisHome}} {
			w.adj(n.ns, n.home, "node", "stop")
			w.adj(n.ns, n.home, "node", "create")
			deadline := time.Now().Add(20 * time.Second)
			for {
				out, err := w.psql(w.analysis, 15432, query)
				if err == nil && out == rows {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after restarting the node in %s: psql = %q, %v", n.ns, out, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})

	t.Run("deleting the analysis member cuts its live sessions within 5 seconds and refuses new ones", func(t *testing.T) {
		psql := make(chan error, 1)
		go func() {
			_, err := w.psql(w.analysis, 15432, "SELECT pg_sleep(60)")
			psql <- err
		}()
		blast := w.transfer("127.0.0.1:17000")
		time.Sleep(time.Second)
		id := strings.TrimSpace(w.adj(w.analysis, w.analysisHome, "identity", "show"))
		start := time.Now()
		w.adj(w.hub, w.hubHome, "project", "member", "delete", id)
		bound := time.After(5 * time.Second)
		for psql != nil || blast != nil {
			select {
			case err := <-psql:
				if err == nil {
					t.Fatal("psql finished cleanly")
				}
				t.Logf("psql ended %v after the deletion: %v", time.Since(start).Round(time.Millisecond), err)
				psql = nil
			case err := <-blast:
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("the transfer was cut %v after the deletion", time.Since(start).Round(time.Millisecond))
				blast = nil
			case <-bound:
				t.Fatal("psql or the transfer still running 5s after the member was deleted")
			}
		}
		w.refused(t, "127.0.0.1:17000", 2*time.Second)
	})
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
