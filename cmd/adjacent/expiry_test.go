package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/adjacentnet/adjacent/control/authority/pgstore"
	"github.com/adjacentnet/adjacent/internal/netns"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// TestCredentialExpiresMidTransfer: when the authority stops renewing a member's credential,
// the member's live portal connection is cut once the credential expires, and new ones are
// refused at once.
//
// The member is removed from the hub's PostgreSQL member store behind the hub's back, as
// another hub sharing the store would: nothing is announced, so the only thing that happens
// is that refreshes are refused (not a member) and the credential runs out.
func TestCredentialExpiresMidTransfer(t *testing.T) {
	w, store := shortLived(t)
	cut := w.transfer("127.0.0.1:17000")
	time.Sleep(time.Second)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	id := strings.TrimSpace(w.adj(w.analysis, w.analysisHome, "identity", "show"))
	tag, err := conn.Exec(ctx, "DELETE FROM "+pgstore.Schema+".members WHERE identifier = $1", id)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("delete analysis from the member store: %v, %d rows", err, tag.RowsAffected())
	}
	deleted := time.Now()

	select {
	case err := <-cut:
		if err != nil {
			t.Fatalf("%v\n%s", err, w.logs())
		}
	case <-time.After(lifetime + bound):
		t.Fatalf("the transfer still runs %v after the member's refreshes stopped\n%s", lifetime+bound, w.logs())
	}
	at := time.Now()
	// The last credential analysis got, which the failed refreshes did not replace.
	expires, err := time.Parse(time.RFC3339Nano, jsonField(t, w.adj(w.analysis, w.analysisHome, "-o", "json", "credential", "show"), "expires"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the transfer was cut %v after the member left the store, %v after its credential expired",
		at.Sub(deleted).Round(time.Millisecond), at.Sub(expires).Round(time.Millisecond))
	// Cut by the expiry, not before.
	if at.Before(expires) || at.After(expires.Add(bound)) {
		t.Fatalf("the transfer was cut at %v, want within %v after the credential's expiry at %v\n%s",
			at.Format(time.StampMilli), bound, expires.Format(time.StampMilli), w.logs())
	}
	if log := readFile(filepath.Join(w.analysisHome, "node.log")); !strings.Contains(log, "credential refresh failed") {
		t.Fatalf("analysis did not fail to refresh its credential\n%s", w.logs())
	}
	w.refused(t, "127.0.0.1:17000", 2*time.Second)
}

// TestMemberStoreHangs: while the hub's member store hangs, no member's credential is
// refreshed; the hub renews its own without the store. A live transfer is cut once the
// members' expire, within the bound however long the refreshes wait, and the portal serves
// again once the store answers.
func TestMemberStoreHangs(t *testing.T) {
	w, _ := shortLived(t)
	cut := w.transfer("127.0.0.1:17000")
	time.Sleep(time.Second)
	resume := w.pauseStore()
	hung := time.Now()
	select {
	case err := <-cut:
		if err != nil {
			t.Fatalf("%v\n%s", err, w.logs())
		}
		t.Logf("the transfer was cut %v after the store hung", time.Since(hung).Round(time.Millisecond))
	case <-time.After(lifetime + bound):
		t.Fatalf("the transfer still runs %v after the store hung\n%s", lifetime+bound, w.logs())
	}
	// The members' credentials lapsed; the hub's own did not: it renews it without the store.
	var hub struct {
		Expires time.Time `json:"credential_expires"`
	}
	if err := json.Unmarshal([]byte(w.adj(w.hub, w.hubHome, "project", "show", "--output", "json")), &hub); err != nil {
		t.Fatal(err)
	}
	if !hub.Expires.After(time.Now()) {
		t.Fatalf("the hub's own credential expired at %v while its store hung\n%s", hub.Expires, w.logs())
	}
	resume()
	resumed := time.Now()
	for {
		out, err := w.blast(w.analysis, 15*time.Second, "exchange", "-to", "127.0.0.1:17000", "-bytes", strconv.Itoa(1<<20))
		if err == nil {
			t.Logf("the portal served again %v after the store resumed", time.Since(resumed).Round(time.Millisecond))
			return
		}
		if time.Since(resumed) > 15*time.Second {
			t.Fatalf("the portal still fails 15s after the store resumed: %s\n%s", out, w.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The credentials of the expiry tests, and how soon after one expires the channels of its
// holder close: the nodes check their peers' credentials every second.
const (
	lifetime = 10 * time.Second
	bound    = 3 * time.Second
)

// shortLived is the start of the expiry tests: a world whose hub issues credentials for
// lifetime and keeps its members in PostgreSQL (its DSN is returned), with an inlet on
// analysis at 127.0.0.1:17000 to a blast server behind an outlet on the bank.
func shortLived(t *testing.T) (*world, string) {
	w := newWorld(t)
	store := pgtest.StartWith(t, pgtest.Options{Namespace: w.hub.Name, Port: 5432})
	w.join("--store", store, "--credential-lifetime", lifetime.String())
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
	// The transfers run for a credential's lifetime and more: keep them from taking every core.
	w.throttle("200mbit")
	return w, store
}

// logs are the last lines of each node's log.
func (w *world) logs() string {
	var b strings.Builder
	for _, n := range []struct{ name, home string }{{"hub", w.hubHome}, {"bank", w.bankHome}, {"analysis", w.analysisHome}} {
		b.WriteString(n.name + " log:\n" + tail(readFile(filepath.Join(n.home, "node.log")), 10) + "\n")
	}
	return b.String()
}

// pauseStore stops the PostgreSQL processes in the hub's namespace, so the member store
// hangs rather than refuses. The returned function, also run at cleanup, resumes them.
func (w *world) pauseStore() (resume func()) {
	out, err := exec.Command("ip", "netns", "pids", w.hub.Name).Output()
	if err != nil {
		w.t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if strings.TrimSpace(readFile("/proc/"+f+"/comm")) == "postgres" {
			pid, _ := strconv.Atoi(f)
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		w.t.Fatalf("no postgres process in %s", w.hub)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	resume = sync.OnceFunc(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	w.t.Cleanup(resume)
	return resume
}

// throttle caps at rate what the bank and analysis send on their links to the hub.
func (w *world) throttle(rate string) {
	for _, ns := range []*netns.NS{w.bank, w.analysis} {
		f := strings.Fields(ns.Run("ip", "-o", "link", "show", "type", "veth"))
		if len(f) < 2 {
			w.t.Fatalf("no veth in %s", ns)
		}
		dev, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		ns.Run("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "100ms")
	}
}
