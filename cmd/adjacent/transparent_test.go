package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/hosts"
	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// psqlAt runs a query in ns against host:port, with hostsFile as the namespace's /etc/hosts
// (bind-mounted in a private mount namespace), so that a name resolves as the node wrote it.
func (w *world) psqlAt(ns *netns.NS, hostsFile, host string, port int, query string) (string, error) {
	bin, err := pgtest.Binaries()
	if err != nil {
		w.t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := `mount --bind "$0" /etc/hosts && exec "$@"`
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "unshare", "-m", "sh", "-c", script, hostsFile,
		filepath.Join(bin, "psql"), "--host", host, "--port", strconv.Itoa(port), "--username", pgtest.User,
		"--dbname", pgtest.Database, "--no-align", "--tuples-only", "--command", query)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// psqlWithin runs the story's query through db.bank.internal:5432 from analysis until it
// returns the rows, failing t with when if it does not within d.
func (w *world) psqlWithin(t *testing.T, hostsFile string, d time.Duration, when string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, err := w.psqlAt(w.analysis, hostsFile, "db.bank.internal", 5432, query)
		if err == nil && out == rows {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: psql = %q, %v", when, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connectRefused tries a TCP connection from ns and reports how it failed.
func connectErr(ns *netns.NS, addr string) (string, time.Duration) {
	host, port, _ := strings.Cut(addr, ":")
	start := time.Now()
	out, _ := ns.Command("bash", "-c", fmt.Sprintf("timeout 5 bash -c 'echo > /dev/tcp/%s/%s' 2>&1 || true", host, port)).CombinedOutput()
	return string(out), time.Since(start)
}

// TestStoryTransparent is DESIGN.md §1 with --tun: psql in the analysis namespace connects to
// db.bank.internal:5432 itself, which the node serves on its TUN device and maps in a hosts
// file; bulk data, half-close, refusals and resets through the TUN path; restarts and deletes.
func TestStoryTransparent(t *testing.T) {
	w := newWorld(t)
	w.project()
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7999", "--from", "down") // nothing listens there
	// A source address for IPv6 clients in the analysis network.
	w.analysis.Run("ip", "-6", "addr", "add", "fd61:646a:1::2/128", "dev", "lo")

	hostsFile := filepath.Join(t.TempDir(), "hosts")
	const orig = "127.0.0.1\tlocalhost\n"
	if err := os.WriteFile(hostsFile, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	out := w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "db.bank.internal:5432", "--via", "postgres", "--tun", "--hosts-file", hostsFile)
	t.Log(strings.TrimSpace(out))
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "blast.bank.internal:7000", "--via", "postgres", "--to", "blast", "--tun", "--hosts-file", hostsFile)
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "[fd61:646a::7]:7000", "--via", "postgres", "--to", "blast", "--tun")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "10.99.0.9:7999", "--via", "postgres", "--to", "down", "--tun")

	dbAddr, blastAddr := "100.127.0.1", "100.127.0.2"
	t.Run("hosts file maps the names", func(t *testing.T) {
		_, es, _, err := hosts.Parse([]byte(readFile(hostsFile)))
		got := map[string]string{}
		for _, e := range es {
			got[e.Name] = e.Addr.String()
		}
		if err != nil || got["db.bank.internal"] != dbAddr || got["blast.bank.internal"] != blastAddr || len(got) != 2 {
			t.Fatalf("hosts block = %v, %v; want db.bank.internal %s, blast.bank.internal %s\n%s", got, err, dbAddr, blastAddr, readFile(hostsFile))
		}
		if !strings.HasPrefix(readFile(hostsFile), orig) {
			t.Fatalf("the lines outside the block changed:\n%s", readFile(hostsFile))
		}
	})

	t.Run("psql --host db.bank.internal --port 5432", func(t *testing.T) {
		out, err := w.psqlAt(w.analysis, hostsFile, "db.bank.internal", 5432, query)
		if err != nil || out != rows {
			t.Fatalf("psql = %q, %v; want %q", out, err, rows)
		}
	})

	t.Run("list shows transparent inlets", func(t *testing.T) {
		out := w.adj(w.analysis, w.analysisHome, "tcp-inlet", "list")
		if !strings.Contains(out, dbAddr+":5432") || !strings.Contains(out, "transparent (db.bank.internal, adjacent") {
			t.Fatalf("tcp-inlet list:\n%s", out)
		}
	})

	t.Run("a port not registered on the virtual address is refused at once", func(t *testing.T) {
		out, d := connectErr(w.analysis, dbAddr+":5433")
		if !strings.Contains(out, "refused") || d > 2*time.Second {
			t.Fatalf("connect to %s:5433: %q after %v, want refused at once", dbAddr, out, d)
		}
	})

	t.Run("a target that is down looks refused", func(t *testing.T) {
		out, d := connectErr(w.analysis, "10.99.0.9:7999")
		if !strings.Contains(out, "refused") || d > 4*time.Second {
			t.Fatalf("connect to an outlet whose target is down: %q after %v, want refused", out, d)
		}
	})

	t.Run("1 GiB each way arrives byte-exact", func(t *testing.T) {
		out, err := w.blast(w.analysis, 5*time.Minute, "exchange", "-to", blastAddr+":7000", "-bytes", strconv.Itoa(1<<30))
		if err != nil || !strings.HasPrefix(out, "ok") {
			t.Fatalf("blast exchange: %v: %s", err, out)
		}
		t.Log(out)
	})

	t.Run("half-close over IPv6", func(t *testing.T) {
		out, err := w.blast(w.analysis, time.Minute, "halfclose", "-to", "[fd61:646a::7]:7000")
		if err != nil || out != "ok halfclose" {
			t.Fatalf("blast halfclose: %v: %s", err, out)
		}
	})

	t.Run("hub killed mid-transfer: a reset, never a clean end of stream", func(t *testing.T) {
		w.killHubMidTransfer(t, blastAddr+":7000")
	})

	t.Run("a restarted analysis node brings the transparent inlets back", func(t *testing.T) {
		w.adj(w.analysis, w.analysisHome, "node", "stop")
		if strings.Contains(readFile(hostsFile), "db.bank.internal") {
			t.Errorf("the stopped node left its names in the hosts file:\n%s", readFile(hostsFile))
		}
		w.adj(w.analysis, w.analysisHome, "node", "create")
		w.psqlWithin(t, hostsFile, 20*time.Second, "after restarting the analysis node")
	})

	dev := func() string {
		out, _ := w.analysis.Command("ip", "-o", "link", "show", "type", "tun").CombinedOutput()
		return string(out)
	}
	routes := func() string {
		return w.analysis.Run("ip", "-4", "route") + w.analysis.Run("ip", "-6", "route")
	}
	t.Run("deleting an inlet removes its address, route and hosts entry", func(t *testing.T) {
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "delete", "db.bank.internal:5432")
		if strings.Contains(readFile(hostsFile), "db.bank.internal") || !strings.Contains(readFile(hostsFile), "blast.bank.internal") {
			t.Fatalf("hosts file after delete:\n%s", readFile(hostsFile))
		}
		if r := routes(); strings.Contains(r, dbAddr) || !strings.Contains(r, blastAddr) {
			t.Fatalf("routes after delete:\n%s", r)
		}
	})

	t.Run("deleting the last removes the device", func(t *testing.T) {
		if !strings.Contains(dev(), "adjacent") {
			t.Fatalf("no adjacent device while inlets remain:\n%s", dev())
		}
		for _, name := range []string{"blast.bank.internal:7000", "[fd61:646a::7]:7000", "10.99.0.9:7999"} {
			w.adj(w.analysis, w.analysisHome, "tcp-inlet", "delete", name)
		}
		if strings.Contains(dev(), "adjacent") {
			t.Fatalf("the device is still there after the last transparent inlet went:\n%s", dev())
		}
		if readFile(hostsFile) != orig {
			t.Fatalf("hosts file after the last delete = %q, want %q", readFile(hostsFile), orig)
		}
	})
}
