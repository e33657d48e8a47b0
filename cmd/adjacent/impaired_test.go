package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/hosts"
	"github.com/adjacentnet/adjacent/internal/impair"
	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// Issue 16, an impaired network: the story's namespaces joined through links that delay
// (50 ms ± 10 ms), lose, duplicate and reorder 1% of packets each way, with TCP's BBR
// congestion control in every namespace, for the portal's hub links and for the plain TCP
// baseline alike. Data crosses both members' links: the inlet's connection to the hub,
// then the hub's to the outlet. The baseline crosses the same two links (the hub forwards
// it) in one TCP connection from end to end; the portal in two, each over one link, joined
// at the hub's relay. (With netem's reorder, which sends a packet with no delay, BBR on a
// one-link connection took its minimum round trip, 0.1 ms, from packets that skipped the
// delay both ways, and kept a dozen packets in flight: the portal's hub connections, not
// the portal, held it to 0.3× the baseline. impair now holds a reordered packet back.)
//
// $ADJACENT_IMPAIRED_BYTES sets how much goes each way (`make reliability` moves 1GiB,
// about 20 minutes here); unset, the test is skipped. Credentials live 60 s and channels
// re-handshake every 5 s, so both happen during the transfers, which must not notice.

// impairedEnv names the byte count of the impaired runs.
const impairedEnv = "ADJACENT_IMPAIRED_BYTES"

// wan is each direction of each member's link.
var wan = impair.Impairment{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01}

// newImpairedWorld is newWorld with impaired links, BBR, and IP forwarding at the hub so
// that the baseline's plain TCP connection crosses the same two links.
func newImpairedWorld(t *testing.T) (*world, [2]*impair.Link) {
	netns.Require(t)
	bin, err := tools()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, bin: bin}
	w.hub, w.bank, w.analysis = netns.New(t, "hub"), netns.New(t, "bank"), netns.New(t, "analysis")
	for _, ns := range []*netns.NS{w.hub, w.bank, w.analysis} {
		ns.Run("sysctl", "-qw", "net.ipv4.tcp_congestion_control=bbr")
	}
	links := [2]*impair.Link{
		impair.Join(t, w.hub, "10.77.1.1/24", w.bank, "10.77.1.2/24", wan, wan),
		impair.Join(t, w.hub, "10.77.2.1/24", w.analysis, "10.77.2.2/24", wan, wan),
	}
	w.hub.Run("ip", "addr", "add", hubIP+"/32", "dev", "lo")
	w.hub.Run("sysctl", "-qw", "net.ipv4.ip_forward=1")
	_, bankDev := links[0].Devices()
	_, analysisDev := links[1].Devices()
	w.bank.Run("ip", "route", "add", hubIP+"/32", "dev", bankDev)
	w.bank.Run("ip", "route", "add", "10.77.2.0/24", "dev", bankDev)
	w.analysis.Run("ip", "route", "add", hubIP+"/32", "dev", analysisDev)
	w.analysis.Run("ip", "route", "add", "10.77.1.0/24", "dev", analysisDev)
	w.hubHome, w.bankHome, w.analysisHome = w.home(), w.home(), w.home()
	return w, links
}

// ledgerQuery returns 20,000 rows: psql's output through each inlet must be the same bytes
// as at the bank itself.
const ledgerQuery = "SELECT id, owner, md5(id::text) FROM ledger ORDER BY id"

func TestImpairedHub(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: moves data over impaired links")
	}
	if os.Getenv(impairedEnv) == "" {
		t.Skip(impairedEnv + " unset: this test takes minutes (1 GiB each way about 20); " +
			"make reliability runs it, or set it (e.g. 64MiB) to run it here")
	}
	n := envSize(t, impairedEnv, 32<<20)
	row := newRow(t, "impaired links through the hub", sizeText(n)+" each way × (plain TCP, classic, transparent) + psql",
		fmt.Sprintf("%v on both members' links, each way; credentials of 60s, re-handshakes every 5s", wan))
	t.Setenv(rehandshakeEnv, "5s")
	w, links := newImpairedWorld(t)

	dsn := pgtest.StartWith(t, pgtest.Options{Namespace: w.bank.Name, Port: 5432})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE ledger AS SELECT i AS id, (ARRAY['ada','grace','linus'])[i%3+1] AS owner FROM generate_series(1, 20000) i`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	w.join("--credential-lifetime", "60s")
	go w.blast(w.bank, time.Hour, "serve", "-listen", "0.0.0.0:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostsFile, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "15432", "--via", "postgres")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "db.bank.internal:5432", "--via", "postgres", "--tun", "--hosts-file", hostsFile)
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "blast.bank.internal:7000", "--via", "postgres", "--to", "blast", "--tun", "--hosts-file", hostsFile)
	_, entries, _, err := hosts.Parse([]byte(readFile(hostsFile)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, e := range entries {
		names[e.Name] = e.Addr.String()
	}

	// psql: the same bytes at the bank, through the classic inlet and through the
	// transparent one; the latter two while the transfers run.
	want, err := w.psql(w.bank, 5432, ledgerQuery)
	if err != nil || strings.Count(want, "\n") != 19999 {
		t.Fatalf("psql at the bank: %v: %.200s", err, want)
	}
	psqls := func() {
		for _, through := range []string{"classic", "transparent"} {
			var got string
			var err error
			for try := 0; try < 3; try++ { // a first connection may wait for the path
				if through == "classic" {
					got, err = w.psql(w.analysis, 15432, ledgerQuery)
				} else {
					got, err = w.psqlAt(w.analysis, hostsFile, "db.bank.internal", 5432, ledgerQuery)
				}
				if err == nil {
					break
				}
			}
			if err != nil || got != want {
				t.Errorf("psql through the %s inlet: %v: %d bytes, sha256 %x; at the bank %d bytes, sha256 %x",
					through, err, len(got), sha256.Sum256([]byte(got)), len(want), sha256.Sum256([]byte(want)))
			}
		}
	}
	psqls()

	var rates []string
	baseline := 0.0
	for _, run := range []struct{ name, addr string }{
		{"plain TCP", "10.77.1.2:7000"},
		{"classic inlet", "127.0.0.1:17000"},
		{"transparent inlet", names["blast.bank.internal"] + ":7000"},
	} {
		portal := run.name != "plain TCP"
		var moved int64
		var took float64
		var keys *keyWatch
		// A portal's run repeats (at most 4 times) until a credential refresh and a
		// re-handshake happened during it.
		for round := 0; round < 4; round++ {
			if portal {
				keys = w.watchKeys()
			}
			start := time.Now()
			out, err := w.blast(w.analysis, 2*time.Minute+time.Duration(n/50e3)*time.Second, "exchange", "-to", run.addr, "-bytes", strconv.FormatInt(n, 10))
			t.Logf("%s: %s, %s to %s", run.name, out, start.Format("15:04:05.000"), time.Now().Format("15:04:05.000"))
			if err != nil || !strings.HasPrefix(out, "ok") {
				row.BytesLost = -1 // the stream broke
				row.Notes = fmt.Sprintf("%s: %s", run.name, out)
				t.Fatalf("%s: blast exchange: %v: %s\n%s", run.name, err, out, w.logsOf())
			}
			var secs float64
			fmt.Sscanf(out[strings.Index(out, "seconds="):], "seconds=%g", &secs)
			moved, took = moved+n, took+secs
			if !portal {
				break
			}
			keys.end()
			t.Logf("%s, round %d: %s; %d credential refreshes, %d re-handshakes during it", run.name, round+1, out, keys.refreshes, keys.rehandshakes)
			if len(keys.lost) > 0 {
				row.Notes = fmt.Sprintf("%s: channels closed during the transfer (%d)", run.name, len(keys.lost))
				t.Fatalf("%s: channels closed during the transfer: %s\n%s", run.name, strings.Join(keys.lost, "; "), w.logsOf())
			}
			psqls()
			if keys.refreshes > 0 && keys.rehandshakes > 0 {
				break
			}
		}
		if portal && (keys.refreshes == 0 || keys.rehandshakes == 0) {
			t.Errorf("%s: %d credential refreshes and %d re-handshakes during its last run; want both", run.name, keys.refreshes, keys.rehandshakes)
		}
		rate := float64(2*moved) / took / 1e6 // both directions
		if !portal {
			baseline = rate
		}
		rates = append(rates, fmt.Sprintf("%s %.2f MB/s (%.2f× plain TCP)", run.name, rate, rate/baseline))
	}
	ab, ba := links[0].Stats()
	cd, dc := links[1].Stats()
	var lost, dup, reord uint64
	for _, s := range []impair.Stats{ab, ba, cd, dc} {
		lost, dup, reord = lost+s.Lost, dup+s.Duplicated, reord+s.Reordered
	}
	row.Faults += fmt.Sprintf("; packets lost %d, duplicated %d, reordered %d", lost, dup, reord)
	row.Notes = "both directions at once, BBR: " + strings.Join(rates, ", ")
	t.Logf("throughput, %s each way, both directions at once, BBR in every namespace: %s", sizeText(n), strings.Join(rates, ", "))
	t.Logf("links: %d packets lost, %d duplicated, %d reordered", lost, dup, reord)
}

// logsOf are the last lines of each node's log.
func (w *world) logsOf() string {
	var b strings.Builder
	for _, n := range []struct{ name, home string }{{"hub", w.hubHome}, {"bank", w.bankHome}, {"analysis", w.analysisHome}} {
		b.WriteString(n.name + " log:\n" + tail(readFile(filepath.Join(n.home, "node.log")), 15) + "\n")
	}
	return b.String()
}

// keyWatch samples the members' status every second while a run lasts, and counts
// credential refreshes (a later expiry than the sample before) and re-handshakes (a
// channel's generation moved). Channels of the first sample that a later one lacks are lost.
type keyWatch struct {
	stop, done   chan struct{}
	refreshes    int
	rehandshakes int
	lost         []string
}

func (w *world) watchKeys() *keyWatch {
	k := &keyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	type chanState struct {
		created time.Time
		gen     int
	}
	expires := map[string]time.Time{}
	chans := map[string]chanState{}
	first := map[string]bool{}
	sample := func(initial bool) {
		for _, m := range []struct {
			ns   *netns.NS
			home string
		}{{w.bank, w.bankHome}, {w.analysis, w.analysisHome}} {
			out, err := w.try(m.ns, m.home, "-o", "json", "status")
			var s api.Status
			if err != nil || json.Unmarshal([]byte(out), &s) != nil || s.Project == nil {
				continue // a busy node: the next sample counts
			}
			if prev := expires[m.ns.Name]; !prev.IsZero() && s.Project.CredentialExpires.After(prev) {
				k.refreshes++
			}
			expires[m.ns.Name] = s.Project.CredentialExpires
			seen := map[string]bool{}
			for _, c := range s.Channels {
				key := m.ns.Name + " " + c.Address
				seen[key] = true
				if prev, ok := chans[key]; ok && prev.created.Equal(c.Created) && prev.gen != c.Generation {
					k.rehandshakes += (c.Generation - prev.gen + 256) % 256
				}
				chans[key] = chanState{c.Created, c.Generation}
				if initial {
					first[key] = true
				}
			}
			for key := range first {
				if strings.HasPrefix(key, m.ns.Name+" ") && !seen[key] {
					k.lost = append(k.lost, key)
					delete(first, key)
				}
			}
		}
	}
	go func() {
		defer close(k.done)
		sample(true)
		for {
			select {
			case <-k.stop:
				sample(false)
				return
			case <-time.After(time.Second):
				sample(false)
			}
		}
	}()
	return k
}

// end stops the sampling after a last sample; the counts are final when it returns.
func (k *keyWatch) end() {
	close(k.stop)
	<-k.done
}
