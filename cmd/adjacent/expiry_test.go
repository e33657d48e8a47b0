package main

import (
	"context"
	"path/filepath"
	"strings"
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
	const lifetime, bound = 10 * time.Second, 3 * time.Second
	w := newWorld(t)
	store := pgtest.StartWith(t, pgtest.Options{Namespace: w.hub.Name, Port: 5432})
	w.join("--store", store, "--credential-lifetime", lifetime.String())
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
	// The transfer runs for lifetime and more: keep it from taking every core.
	w.throttle("200mbit")

	logs := func() string {
		var b strings.Builder
		for _, n := range []struct{ name, home string }{{"hub", w.hubHome}, {"bank", w.bankHome}, {"analysis", w.analysisHome}} {
			b.WriteString(n.name + " log:\n" + tail(readFile(filepath.Join(n.home, "node.log")), 10) + "\n")
		}
		return b.String()
	}
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
			t.Fatalf("%v\n%s", err, logs())
		}
	case <-time.After(lifetime + bound):
		t.Fatalf("the transfer still runs %v after the member's refreshes stopped\n%s", lifetime+bound, logs())
	}
	at := time.Now()
	// The last credential analysis got, which the failed refreshes did not replace.
	expires, err := time.Parse(time.RFC3339Nano, jsonField(t, w.adj(w.analysis, w.analysisHome, "-o", "json", "credential", "show"), "expires"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the transfer was cut %v after the member left the store, %v after its credential expired",
		at.Sub(deleted).Round(time.Millisecond), at.Sub(expires).Round(time.Millisecond))
	// Cut by the expiry, not before: the hub and the bank check their peers' credentials
	// every second.
	if at.Before(expires) || at.After(expires.Add(bound)) {
		t.Fatalf("the transfer was cut at %v, want within %v after the credential's expiry at %v\n%s",
			at.Format(time.StampMilli), bound, expires.Format(time.StampMilli), logs())
	}
	if log := readFile(filepath.Join(w.analysisHome, "node.log")); !strings.Contains(log, "credential refresh failed") {
		t.Fatalf("analysis did not fail to refresh its credential\n%s", logs())
	}
	w.refused(t, "127.0.0.1:17000", 2*time.Second)
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
