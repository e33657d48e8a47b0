package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/internal/netns"
)

// TestStoryRaw is DESIGN.md §1 with --tun --raw: psql in the analysis namespace connects to
// db.bank.internal:5432 itself, and its own TCP segments travel to the bank's node, which
// injects them toward PostgreSQL with a raw socket. Targets on the bank's loopback and on
// another host of its network; bulk data, half-close and resets; a hub restart; and no RST
// from the bank's kernel, ever.
func TestStoryRaw(t *testing.T) {
	w := newWorld(t)
	w.project()
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	go w.blast(w.bank, time.Hour, "serve", "-listen", "[::1]:7001")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "[::1]:7001", "--from", "blast6")
	// Another host of the bank's network, reached from the bank's node over a veth.
	office := netns.New(t, "office")
	netns.Link(t, w.bank, "10.78.0.1/24", office, "10.78.0.2/24")
	go w.blast(office, time.Hour, "serve", "-listen", "10.78.0.2:7002")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "10.78.0.2:7002", "--from", "office")
	w.analysis.Run("ip", "-6", "addr", "add", "fd61:646a:1::2/128", "dev", "lo")

	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostsFile, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inlet := func(from, to string) {
		args := []string{"tcp-inlet", "create", "--from", from, "--via", "postgres", "--tun", "--raw"}
		if !strings.HasPrefix(from, "[") {
			args = append(args, "--hosts-file", hostsFile)
		}
		if to != "" {
			args = append(args, "--to", to)
		}
		t.Log(strings.TrimSpace(w.adj(w.analysis, w.analysisHome, args...)))
	}
	inlet("db.bank.internal:5432", "")
	inlet("blast.bank.internal:7000", "blast")
	inlet("[fd61:646a::7]:7001", "blast6")
	inlet("office.bank.internal:7002", "office")
	blastAddr := "100.127.0.2:7000"

	t.Run("psql --host db.bank.internal --port 5432", func(t *testing.T) {
		out, err := w.psqlAt(w.analysis, hostsFile, "db.bank.internal", 5432, query)
		if err != nil || out != rows {
			t.Fatalf("psql = %q, %v; want %q", out, err, rows)
		}
	})

	t.Run("list shows packet mode", func(t *testing.T) {
		out := w.adj(w.analysis, w.analysisHome, "tcp-inlet", "list")
		if !strings.Contains(out, "packet mode") || !strings.Contains(out, "100.127.0.1:5432") {
			t.Fatalf("tcp-inlet list:\n%s", out)
		}
	})

	t.Run("1 GiB each way arrives byte-exact", func(t *testing.T) {
		size := 1 << 30
		if testing.Short() {
			size = 64 << 20
		}
		out, err := w.blast(w.analysis, 5*time.Minute, "exchange", "-to", blastAddr, "-bytes", strconv.Itoa(size))
		if err != nil || !strings.HasPrefix(out, "ok") {
			t.Fatalf("blast exchange: %v: %s", err, out)
		}
		t.Log(out)
	})

	t.Run("a target on another host of the outlet's network", func(t *testing.T) {
		out, err := w.blast(w.analysis, time.Minute, "exchange", "-to", "100.127.0.3:7002", "-bytes", strconv.Itoa(32<<20))
		if err != nil || !strings.HasPrefix(out, "ok") {
			t.Fatalf("blast exchange: %v: %s", err, out)
		}
	})

	t.Run("half-close over IPv6", func(t *testing.T) {
		out, err := w.blast(w.analysis, time.Minute, "halfclose", "-to", "[fd61:646a::7]:7001")
		if err != nil || out != "ok halfclose" {
			t.Fatalf("blast halfclose: %v: %s", err, out)
		}
	})

	t.Run("a port no inlet serves is refused at once", func(t *testing.T) {
		out, d := connectErr(w.analysis, "100.127.0.1:5433")
		if !strings.Contains(out, "refused") || d > 2*time.Second {
			t.Fatalf("connect to 100.127.0.1:5433: %q after %v, want refused at once", out, d)
		}
	})

	t.Run("hub killed mid-transfer: a reset, never a clean end of stream", func(t *testing.T) {
		w.killHubMidTransfer(t, blastAddr)
		w.psqlWithin(t, hostsFile, 20*time.Second, "after the hub restarted")
	})

	t.Run("no RST ever left the bank's kernel for a flow port", func(t *testing.T) {
		var st api.Status
		if err := json.Unmarshal([]byte(w.adj(w.bank, w.bankHome, "status", "-o", "json")), &st); err != nil || st.Packets == nil {
			t.Fatalf("node status at the bank: %v, packets %+v", err, st.Packets)
		}
		t.Logf("bank's packet flows: %+v", *st.Packets)
		if st.Packets.KernelRSTs != 0 {
			t.Errorf("%d RSTs from the flow ports were dropped at the bank: its kernel answered flows", st.Packets.KernelRSTs)
		}
		if st.Packets.Diverted == 0 || st.Packets.Opened == 0 {
			t.Errorf("no flow was opened or no packet kept from the bank's kernel: the flows did not use the rules")
		}
	})

	t.Run("an outlet's node without CAP_NET_RAW refuses, with the reason, and classic portals work", func(t *testing.T) {
		if _, err := exec.LookPath("capsh"); err != nil {
			t.Skip("needs capsh to drop CAP_NET_RAW")
		}
		w.adj(w.bank, w.bankHome, "node", "stop")
		adj := filepath.Join(w.bin, "adjacent")
		if out, err := w.bank.Command("capsh", "--drop=cap_net_raw", "--", "-c", `exec "$0" --home "$1" node create`, adj, w.bankHome).CombinedOutput(); err != nil {
			t.Fatalf("node create without CAP_NET_RAW: %v: %s", err, out)
		}
		defer func() {
			w.adj(w.bank, w.bankHome, "node", "stop")
			w.adj(w.bank, w.bankHome, "node", "create")
		}()
		out, err := w.try(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "10.99.0.8:7000", "--via", "postgres", "--to", "blast", "--tun", "--raw")
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_RAW") {
			t.Fatalf("tcp-inlet create --raw to a node without CAP_NET_RAW: %v: %s; want refused, naming CAP_NET_RAW", err, out)
		}
		t.Logf("refused: %v", err)
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "10.99.0.8:7000", "--via", "postgres", "--to", "blast", "--tun", "--raw", "--no-wait")
		if out, d := connectErr(w.analysis, "10.99.0.8:7000"); !strings.Contains(out, "refused") || d > 4*time.Second {
			t.Errorf("a connection through the refused packet inlet: %q after %v, want refused", out, d)
		}
		if list := w.adj(w.analysis, w.analysisHome, "tcp-inlet", "list"); !strings.Contains(list, "CAP_NET_RAW") {
			t.Errorf("tcp-inlet list does not show why the packet inlet is refused:\n%s", list)
		}
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "delete", "10.99.0.8:7000")
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
		if out, err := w.blast(w.analysis, time.Minute, "exchange", "-to", "127.0.0.1:17000", "-bytes", strconv.Itoa(8<<20)); err != nil || !strings.HasPrefix(out, "ok") {
			t.Errorf("a classic inlet beside: %v: %s", err, out)
		}
		w.adj(w.analysis, w.analysisHome, "tcp-inlet", "delete", "127.0.0.1:17000")
	})

	t.Run("deleting the last removes the device", func(t *testing.T) {
		for _, name := range []string{"db.bank.internal:5432", "blast.bank.internal:7000", "[fd61:646a::7]:7001", "office.bank.internal:7002"} {
			w.adj(w.analysis, w.analysisHome, "tcp-inlet", "delete", name)
		}
		if out := w.analysis.Run("ip", "-o", "link", "show", "type", "tun"); strings.Contains(out, "adjraw") {
			t.Fatalf("the device is still there after the last packet inlet went:\n%s", out)
		}
	})
}
