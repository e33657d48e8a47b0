package main

import (
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/authority"
	"github.com/adjacentnet/adjacent/control/authority/pgstore"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// echoServer serves TCP echo on a loopback port until the test ends, and returns the port.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// echoes dials addr and reports whether a line comes back through it.
func echoes(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "ping\n" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// eventually retries f for up to d and returns its last error.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type projectCounters struct {
	Connected      bool   `json:"connected"`
	EventsDropped  uint64 `json:"events_dropped"`
	RevokedRefused uint64 `json:"revoked_refused"`
}

func showProject(t *testing.T, home string) projectCounters {
	t.Helper()
	var p projectCounters
	if err := json.Unmarshal([]byte(mustCLI(t, "--home", home, "-o", "json", "project", "show")), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestForgedRevocationThroughRelayIsDropped: a member sends the relay owner, through the
// owner's relay, a revocation of the hub itself (issue 12, item 2). It arrives on the owner's
// channel to the hub, from the hub's identity, but the authority did not sign it: the owner
// drops and counts it, keeps its channel to the hub, and its outlet keeps serving.
func TestForgedRevocationThroughRelayIsDropped(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	mustCLI(t, "--home", bank, "tcp-outlet", "create", "--to", echoServer(t))
	analysis := member(t, h)
	inlet := freePort(t)
	mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", inlet, "--via", "postgres")
	if err := eventually(10*time.Second, func() error { return echoes(inlet) }); err != nil {
		t.Fatalf("the portal before the forgery: %v", err)
	}

	hubID := identifier(t, h)
	forgeries := []string{
		`{"revoked":"` + hubID + `"}`,                 // what the hub used to send, unsigned
		"\x01\x01\x04acme" + strings.Repeat("A", 200), // the event format, garbage signature
	}
	for _, f := range forgeries {
		// No worker answers events: the send times out, the event is delivered all the same.
		cli(t, "--home", analysis, "message", "send", f, "--to", "/project/acme/service/forward_to_postgres/service/project.events", "--timeout", "1s")
	}
	if err := eventually(5*time.Second, func() error {
		if p := showProject(t, bank); p.EventsDropped < uint64(len(forgeries)) || !p.Connected {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Fatalf("the bank after %d forged events: %+v, want them dropped and counted, connected to the hub\nbank log:\n%s",
			len(forgeries), showProject(t, bank), tail(readFile(filepath.Join(bank, "node.log")), 10))
	}
	// The bank would cut the hub within a second of acting on the event; give it two.
	time.Sleep(2 * time.Second)
	if p := showProject(t, bank); !p.Connected {
		t.Fatalf("the bank lost its channel to the hub after a forged revocation\nbank log:\n%s", tail(readFile(filepath.Join(bank, "node.log")), 10))
	}
	if err := echoes(inlet); err != nil {
		t.Fatalf("the bank's outlet stopped serving after a forged revocation: %v\nbank log:\n%s", err, tail(readFile(filepath.Join(bank, "node.log")), 10))
	}
	if log := readFile(filepath.Join(bank, "node.log")); !strings.Contains(log, "dropped control events") {
		t.Errorf("the bank did not log the dropped events:\n%s", tail(log, 10))
	}
}

// TestRevocationSurvivesHubRestart: a member deleted at the hub still holds an unexpired
// credential; after the hub restarts it can neither open a channel to the hub, nor use a
// relay, nor register its own (issue 12, item 7).
func TestRevocationSurvivesHubRestart(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			var flags []string
			if store == "postgres" {
				flags = []string{"--store", pgtest.Start(t)}
			}
			h := hub(t, "acme", flags...)
			bank := member(t, h, "--relay", "postgres")
			mustCLI(t, "--home", bank, "relay", "create", "postgres")
			analysis := member(t, h)
			mallory := member(t, h, "--relay", "mallory")
			mustCLI(t, "--home", mallory, "relay", "create", "mallory")
			mustCLI(t, "--home", mallory, "message", "send", "before", "--to", viaRelay)

			mustCLI(t, "--home", h, "project", "member", "delete", identifier(t, mallory))
			// The hub and the relay owner restart: neither remembers the revocation in memory.
			mustCLI(t, "--home", bank, "node", "stop")
			mustCLI(t, "--home", h, "node", "stop")
			mustCLI(t, "--home", h, "node", "create")
			mustCLI(t, "--home", bank, "node", "create")
			// The bank comes back: the hub serves members again, and its relay carries an
			// honest member's messages to the bank. (A relay owner's own messages into its
			// relay go nowhere: a relay is no way into the hub.)
			if err := eventually(20*time.Second, func() error {
				if _, _, code := cli(t, "--home", analysis, "message", "send", "x", "--to", viaRelay, "--timeout", "2s"); code != 0 {
					return io.ErrNoProgress
				}
				return nil
			}); err != nil {
				t.Fatal("no path to the bank through the restarted hub within 20s")
			}
			// Mallory's credential has not expired.
			exp, err := time.Parse(time.RFC3339Nano, jsonField(t, mustCLI(t, "--home", mallory, "-o", "json", "credential", "show"), "expires"))
			if err != nil || !exp.After(time.Now().Add(time.Minute)) {
				t.Fatalf("mallory's credential expires %v (%v), want well after now", exp, err)
			}
			hubAddr := jsonField(t, mustCLI(t, "--home", h, "-o", "json", "project", "show"), "hub")
			_, errOut, code := cli(t, "--home", mallory, "secure-channel", "create", "--to", hubAddr+"/service/api", "--timeout", "5s")
			if code == 0 || !strings.Contains(errOut, "revoked") {
				t.Errorf("a deleted member's channel to the restarted hub: exit %d, %q; want a refusal saying it was revoked", code, errOut)
			}
			if _, errOut, code := cli(t, "--home", mallory, "message", "send", "after", "--to", viaRelay, "--timeout", "3s"); code == 0 {
				t.Errorf("a deleted member used a relay of the restarted hub")
			} else {
				t.Logf("through the relay: %s", strings.TrimSpace(errOut))
			}
			if _, _, code := cli(t, "--home", mallory, "relay", "create", "mallory"); code == 0 {
				t.Errorf("a deleted member registered a relay at the restarted hub")
			}
		})
	}
}

// TestEventsReachOnlyMembers: a revocation goes to the members connected to the hub, not to
// a stranger that merely holds a channel to it (as a node does to enroll).
func TestEventsReachOnlyMembers(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h)
	gone := member(t, h)
	stranger := newHome(t)
	hubAddr := jsonField(t, mustCLI(t, "--home", h, "-o", "json", "project", "show"), "hub")
	mustCLI(t, "--home", stranger, "secure-channel", "create", "--to", hubAddr+"/service/api")
	strangerID := identifier(t, stranger)
	sent := func() uint64 {
		var chans []struct {
			Peer        string `json:"peer"`
			MessagesOut uint64 `json:"messages_out"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, "--home", h, "-o", "json", "secure-channel", "list")), &chans); err != nil {
			t.Fatal(err)
		}
		for _, c := range chans {
			if c.Peer == strangerID {
				return c.MessagesOut
			}
		}
		t.Fatalf("the hub has no channel with the stranger %s: %+v", strangerID, chans)
		return 0
	}
	before := sent()
	goneID := identifier(t, gone)
	mustCLI(t, "--home", h, "project", "member", "delete", goneID)
	// The member hears of it.
	if err := eventually(5*time.Second, func() error {
		if !strings.Contains(readFile(filepath.Join(bank, "node.log")), "revoked a member") {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Fatalf("the member did not act on the revocation\nbank log:\n%s", tail(readFile(filepath.Join(bank, "node.log")), 10))
	}
	if after := sent(); after != before {
		t.Errorf("the hub sent the stranger %d messages after deleting a member, want none", after-before)
	}
}

// TestRevocationThroughSharedStore: a member revoked by another hub sharing the PostgreSQL
// member store is refused by this hub too once it reads the store again, and its channel is
// cut.
func TestRevocationThroughSharedStore(t *testing.T) {
	dsn := pgtest.Start(t)
	h := hub(t, "acme", "--store", dsn)
	bank := member(t, h)
	mallory := member(t, h)
	if err := eventually(5*time.Second, func() error {
		if !showProject(t, mallory).Connected {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Fatal("mallory is not connected to the hub")
	}
	other, err := pgstore.Open(t.Context(), dsn) // the other hub's store
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Now()
	r := authority.Revocation{Identifier: identity.Identifier(identifier(t, mallory)), Revoked: now, Until: now.Add(time.Hour)}
	if ok, err := other.RevokeMember(t.Context(), r); !ok || err != nil {
		t.Fatalf("RevokeMember through the other hub's store = %v, %v", ok, err)
	}
	start := time.Now()
	if err := eventually(20*time.Second, func() error {
		if showProject(t, mallory).Connected {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Fatalf("the member revoked through the shared store is still connected to the hub after 20s\nhub log:\n%s", tail(readFile(filepath.Join(h, "node.log")), 10))
	}
	t.Logf("the hub cut the member %v after another hub revoked it", time.Since(start).Round(time.Millisecond))
	if !showProject(t, bank).Connected {
		t.Fatal("the bank lost the hub too")
	}
}

// TestRestartedMemberLearnsRevocations: a member that restarts (or was away when a member
// was deleted) gets the revocations in force from the hub, signed, when it connects.
func TestRestartedMemberLearnsRevocations(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h)
	mallory := member(t, h)
	mustCLI(t, "--home", bank, "node", "stop")
	mustCLI(t, "--home", h, "project", "member", "delete", identifier(t, mallory))
	mustCLI(t, "--home", bank, "node", "create")
	if err := eventually(10*time.Second, func() error {
		if !strings.Contains(readFile(filepath.Join(bank, "node.log")), `msg="the hub told this node of revoked members" count=1`) {
			return io.EOF
		}
		return nil
	}); err != nil {
		t.Fatalf("the member did not learn of the revocation when it connected\nbank log:\n%s", tail(readFile(filepath.Join(bank, "node.log")), 10))
	}
	if p := showProject(t, bank); p.EventsDropped != 0 {
		t.Errorf("the member dropped %d of the hub's revocations", p.EventsDropped)
	}
}
