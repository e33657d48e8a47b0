package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// rotated is what `identity rotate -o json` and `identity show -o json` print.
type rotated struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier"`
	Changes    int    `json:"changes"`
	PrimaryKey string `json:"primary_key"`
}

func decodeInto[T any](t *testing.T, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return v
}

// memberChanges returns, from the hub's member list, how many changes the hub has seen in
// each member's identity history (0: never seen rotated).
func memberChanges(t *testing.T, list string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range decodeInto[[]struct {
		Identifier string `json:"identifier"`
		Changes    int    `json:"changes"`
	}](t, list) {
		out[m.Identifier] = m.Changes
	}
	return out
}

// vaultKeys lists the key files in a home's vault.
func vaultKeys(t *testing.T, home string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(home, "vault"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestIdentityRotate: `identity rotate` keeps the identifier, adds a change, deletes the
// retired private key, and leaves the member reachable through its relay on channels opened
// before and after; the hub sees the longer history; a hub that rotates keeps its members'
// credentials verifying, on open channels and new ones. Errors are one line.
func TestIdentityRotate(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	before := identifier(t, bank)
	keyBefore := decodeInto[rotated](t, mustCLI(t, "--home", bank, "-o", "json", "identity", "show")).PrimaryKey
	// A thief copies the bank's home, retired key and all, before the rotation.
	mustCLI(t, "--home", bank, "node", "stop")
	thief := newHome(t)
	if out, err := exec.Command("cp", "-a", bank, thief).CombinedOutput(); err != nil {
		t.Fatalf("copy the bank's home: %v: %s", err, out)
	}
	mustCLI(t, "--home", bank, "node", "create")
	waitFor(t, 10*time.Second, "the bank's relay after its restart", func() bool {
		out, _, code := cli(t, "--home", analysis, "message", "send", "back", "--to", viaRelay, "--timeout", "2s")
		return code == 0 && out == "back\n"
	})
	// A channel opened before the rotation.
	sc := strings.TrimSpace(mustCLI(t, "--home", analysis, "secure-channel", "create", "--to", "/project/acme/service/forward_to_postgres/service/api"))

	r := decodeInto[rotated](t, mustCLI(t, "--home", bank, "-o", "json", "identity", "rotate"))
	if r.Identifier != before || r.Changes != 2 || r.PrimaryKey == keyBefore || r.PrimaryKey == "" {
		t.Fatalf("identity rotate = %+v, want identifier %s, 2 changes, a new primary key (was %s)", r, before, keyBefore)
	}
	if id := identifier(t, bank); id != before {
		t.Fatalf("identity show after rotate = %s, want %s", id, before)
	}
	if keys := strings.Join(vaultKeys(t, bank), " "); strings.Contains(keys, "identity-default") {
		t.Fatalf("the retired key is still in the vault: %s", keys)
	}
	if out := mustCLI(t, "--home", analysis, "message", "send", "old", "--to", sc+"/service/echo"); out != "old\n" {
		t.Fatalf("through the channel opened before the rotation = %q", out)
	}
	if out := mustCLI(t, "--home", analysis, "message", "send", "new", "--to", viaRelay); out != "new\n" {
		t.Fatalf("through a new channel after the rotation = %q", out)
	}
	// The bank's channel to the hub re-handshakes with the new history.
	waitFor(t, 10*time.Second, "the hub to see the bank's rotated history", func() bool {
		return memberChanges(t, mustCLI(t, "--home", h, "-o", "json", "project", "member", "list"))[before] == 2
	})

	// The thief's node presents the bank's history from before the rotation, with a credential
	// still valid: the hub refuses it, also after a restart.
	thiefRefused := func(when string) {
		t.Helper()
		_, errOut, code := cli(t, "--home", thief, "message", "send", "x", "--to", viaRelay, "--timeout", "5s")
		if code == 0 || !strings.Contains(errOut, "older or forked identity history") {
			t.Fatalf("the thief's node %s: exit %d, %q; want a refusal of its older history", when, code, errOut)
		}
	}
	thiefRefused("after the rotation")
	// The hub restarts while the bank is away: what it knows of the bank is what it stored.
	mustCLI(t, "--home", bank, "node", "stop")
	mustCLI(t, "--home", h, "node", "stop")
	mustCLI(t, "--home", h, "node", "create")
	thiefRefused("after the hub restarted")
	if got := memberChanges(t, mustCLI(t, "--home", h, "-o", "json", "project", "member", "list"))[before]; got != 2 {
		t.Fatalf("after the hub restarted, the member list shows %d changes for the bank, want 2", got)
	}
	mustCLI(t, "--home", thief, "node", "stop")
	mustCLI(t, "--home", bank, "node", "create")
	waitFor(t, 20*time.Second, "analysis to reach the bank through the restarted hub", func() bool {
		out, _, code := cli(t, "--home", analysis, "message", "send", "back", "--to", viaRelay, "--timeout", "2s")
		return code == 0 && out == "back\n"
	})
	sc = strings.TrimSpace(mustCLI(t, "--home", analysis, "secure-channel", "create", "--to", "/project/acme/service/forward_to_postgres/service/api"))

	// The hub rotates: open channels keep working, the members learn its history from its
	// credential and their fresh credentials verify at their peers.
	hubID := identifier(t, h)
	signingBefore := signingKeys(t, h)
	// Times are kept to the second: a signature by the retired key made in the second of the
	// rotation counts as made after it. Let the project's first second pass.
	time.Sleep(time.Second)
	if r := decodeInto[rotated](t, mustCLI(t, "--home", h, "-o", "json", "identity", "rotate")); r.Identifier != hubID || r.Changes != 2 {
		t.Fatalf("hub identity rotate = %+v", r)
	}
	// A new credential-signing key replaced the old one, which a thief of the hub's
	// retired identity key might hold too.
	if after := signingKeys(t, h); len(after) != 1 || len(signingBefore) != 1 || after[0] == signingBefore[0] {
		t.Fatalf("credential-signing keys in the hub's vault: %v before the rotation, %v after; want one, replaced", signingBefore, after)
	}
	if out := mustCLI(t, "--home", analysis, "message", "send", "old", "--to", sc+"/service/echo"); out != "old\n" {
		t.Fatalf("through the old channel after the hub's rotation = %q", out)
	}
	if out := mustCLI(t, "--home", analysis, "message", "send", "new", "--to", viaRelay); out != "new\n" {
		t.Fatalf("through a new channel after the hub's rotation = %q", out)
	}
	late := member(t, h) // a ticket made after the rotation carries the new history
	if out := mustCLI(t, "--home", late, "message", "send", "late", "--to", viaRelay); out != "late\n" {
		t.Fatalf("a member enrolled after the hub's rotation = %q", out)
	}
	// A member restarted after the hub's rotation reconnects under the history it learned.
	mustCLI(t, "--home", analysis, "node", "stop")
	waitFor(t, 20*time.Second, "analysis to reach the bank after its restart", func() bool {
		out, _, code := cli(t, "--home", analysis, "message", "send", "again", "--to", viaRelay, "--timeout", "2s")
		return code == 0 && out == "again\n"
	})

	// Another identity of the home rotates without touching the node's.
	mustCLI(t, "--home", bank, "identity", "create", "spare")
	if r := decodeInto[rotated](t, mustCLI(t, "--home", bank, "-o", "json", "identity", "rotate", "spare")); r.Name != "spare" || r.Changes != 2 {
		t.Fatalf("identity rotate spare = %+v", r)
	}
	if r := decodeInto[rotated](t, mustCLI(t, "--home", bank, "-o", "json", "identity", "show")); r.Changes != 2 || r.Identifier != before {
		t.Fatalf("the node's identity after rotating another = %+v", r)
	}
	_, errOut, code := cli(t, "--home", bank, "identity", "rotate", "nosuch")
	if code == 0 || !strings.Contains(errOut, "nosuch") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("identity rotate nosuch: exit %d, %q; want one line naming it", code, errOut)
	}
}

// signingKeys lists the credential-signing keys in a hub's vault.
func signingKeys(t *testing.T, home string) []string {
	t.Helper()
	var out []string
	for _, k := range vaultKeys(t, home) {
		if strings.HasPrefix(k, "credential-signing-") {
			out = append(out, k)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exchange moves n bytes each way between analysis and the blast server behind the portal at
// 127.0.0.1:17000, checking every byte, and reports how it ended: nil if it completed.
func (w *world) exchange(n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		out, err := w.blast(w.analysis, 2*time.Minute, "exchange", "-to", "127.0.0.1:17000", "-bytes", strconv.Itoa(n))
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		done <- err
	}()
	return done
}

// running fails the test if the transfer has already ended.
func running(t *testing.T, transfer <-chan error, when string) {
	t.Helper()
	select {
	case err := <-transfer:
		t.Fatalf("the transfer ended before %s (%v); make it longer", when, err)
	default:
	}
}

// TestIdentityRotateMidTransfer: the bank (outlet and relay owner) and then analysis (inlet)
// run `identity rotate` while a transfer runs through their portal: it completes byte for
// byte, a new connection works, the hub sees both members' longer histories under their
// unchanged identifiers. Then the hub rotates its own identity during another transfer that
// outlasts the members' credentials: they refresh them under the hub's new key, the transfer
// completes, and a member restarted afterwards reconnects.
func TestIdentityRotateMidTransfer(t *testing.T) {
	w := newWorld(t)
	w.join("--credential-lifetime", lifetime.String())
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
	w.throttle("200mbit") // 256 MiB each way take about 11 s
	const size = 256 << 20
	ids := map[string]string{}
	for name, m := range map[string]struct {
		ns   *netns.NS
		home string
	}{"bank": {w.bank, w.bankHome}, "analysis": {w.analysis, w.analysisHome}} {
		ids[name] = decodeInto[rotated](t, w.adj(m.ns, m.home, "-o", "json", "identity", "show")).Identifier
	}

	transfer := w.exchange(size)
	time.Sleep(time.Second)
	r := decodeInto[rotated](t, w.adj(w.bank, w.bankHome, "-o", "json", "identity", "rotate"))
	if r.Identifier != ids["bank"] || r.Changes != 2 {
		t.Fatalf("bank: identity rotate = %+v, want %s with 2 changes", r, ids["bank"])
	}
	time.Sleep(time.Second)
	r = decodeInto[rotated](t, w.adj(w.analysis, w.analysisHome, "-o", "json", "identity", "rotate"))
	if r.Identifier != ids["analysis"] || r.Changes != 2 {
		t.Fatalf("analysis: identity rotate = %+v, want %s with 2 changes", r, ids["analysis"])
	}
	running(t, transfer, "both members rotated")
	if err := <-transfer; err != nil {
		t.Fatalf("the transfer through the rotating members: %v\n%s", err, w.logs())
	}
	if err := <-w.exchange(1 << 20); err != nil {
		t.Fatalf("a new connection after the rotations: %v\n%s", err, w.logs())
	}
	for name, home := range map[string]string{"bank": w.bankHome, "analysis": w.analysisHome} {
		ns := map[string]*netns.NS{"bank": w.bank, "analysis": w.analysis}[name]
		if r := decodeInto[rotated](t, w.adj(ns, home, "-o", "json", "identity", "show")); r.Identifier != ids[name] || r.Changes != 2 {
			t.Fatalf("%s: identity show = %+v, want %s with 2 changes", name, r, ids[name])
		}
	}
	waitFor(t, 10*time.Second, "the hub to see both members' rotated histories", func() bool {
		seen := memberChanges(t, w.adj(w.hub, w.hubHome, "-o", "json", "project", "member", "list"))
		return seen[ids["bank"]] == 2 && seen[ids["analysis"]] == 2
	})

	// The hub rotates during a transfer longer than a credential's lifetime.
	transfer = w.exchange(size)
	time.Sleep(time.Second)
	hubID := identifier(t, w.hubHome)
	r = decodeInto[rotated](t, w.adj(w.hub, w.hubHome, "-o", "json", "identity", "rotate"))
	hubRotated := time.Now()
	if r.Changes != 2 || r.Identifier != hubID {
		t.Fatalf("hub: identity rotate = %+v", r)
	}
	running(t, transfer, "the hub rotated")
	if err := <-transfer; err != nil {
		t.Fatalf("the transfer while the hub rotated: %v\n%s", err, w.logs())
	}
	for name, m := range map[string]struct {
		ns   *netns.NS
		home string
	}{"bank": {w.bank, w.bankHome}, "analysis": {w.analysis, w.analysisHome}} {
		expires, err := time.Parse(time.RFC3339Nano, jsonField(t, w.adj(m.ns, m.home, "-o", "json", "credential", "show"), "expires"))
		if err != nil {
			t.Fatal(err)
		}
		if !expires.After(hubRotated.Add(lifetime)) {
			t.Fatalf("%s: credential expires %v, want one issued after the hub rotated at %v\n%s", name, expires, hubRotated, w.logs())
		}
	}
	if err := <-w.exchange(1 << 20); err != nil {
		t.Fatalf("a new connection after the hub rotated: %v\n%s", err, w.logs())
	}
	// The members learned the hub's new history from what it signs (not from a reconnect:
	// their channels to the hub stayed up).
	for _, home := range []string{w.bankHome, w.analysisHome} {
		if log := readFile(filepath.Join(home, "node.log")); !strings.Contains(log, "the authority rotated its identity key") ||
			strings.Contains(log, "lost the hub") {
			t.Fatalf("%s did not learn the hub's rotation on its open channel\n%s", home, w.logs())
		}
	}
	// The channels opened before the rotations re-handshook under the new histories.
	for _, home := range []string{w.hubHome, w.bankHome, w.analysisHome} {
		if log := readFile(filepath.Join(home, "node.log")); strings.Contains(log, "re-handshake refused") {
			t.Fatalf("%s refused a re-handshake\n%s", home, w.logs())
		}
	}
	w.adj(w.analysis, w.analysisHome, "node", "stop")
	w.adj(w.analysis, w.analysisHome, "node", "create")
	waitFor(t, 20*time.Second, "the portal to serve after analysis restarted", func() bool {
		return <-w.exchange(1<<20) == nil
	})
}
