package main

import (
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The relay owner's holes of issue 12: what the owner sends into its own relay, with more
// hops after it, must reach the hub's channels to the relay's clients and nothing else. (The
// third hole, making the hub dial, needs a TCP hop after the relay, which the CLI does not
// write: routing/tcp's TestRelayOwnerCannotDialFromHub covers it.)

// hubWithRelay starts a hub for acme and a member, bank, holding its relay postgres.
func hubWithRelay(t *testing.T) (hubHome, bank string) {
	t.Helper()
	hubHome = hub(t, "acme")
	bank = member(t, hubHome, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	return hubHome, bank
}

// countingListener is a loopback TCP listener that counts the connections it accepts.
type countingListener struct {
	l        net.Listener
	accepted atomic.Int64
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &countingListener{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
		}
	}()
	return c
}

func (c *countingListener) port() string {
	_, port, _ := net.SplitHostPort(c.l.Addr().String())
	return port
}

// throughRelayStillWorks sends a member's message through the relay to the bank's echo: the
// relay carries honest traffic, and what the owner sent before has had its chance to land.
func throughRelayStillWorks(t *testing.T, analysis string) {
	t.Helper()
	if out := mustCLI(t, "--home", analysis, "message", "send", "honest", "--to", viaRelay); out != "honest\n" {
		t.Fatalf("member to member through the relay = %q", out)
	}
}

func TestRelayOwnerCannotBypassOutletPolicyAtHub(t *testing.T) {
	h, bank := hubWithRelay(t)
	target := listenCounting(t)
	mustCLI(t, "--home", h, "tcp-outlet", "create", "--to", target.port(), "--from", "hubdb", "--allow", `(= subject.role "nobody")`)
	connect := "\x01\x00\x01\x00\x00" // a portal's connect message, with a 64 KiB window
	if out, _, code := cli(t, "--home", bank, "message", "send", connect, "--to", "/project/acme/service/forward_to_postgres/service/hubdb", "--timeout", "1s"); code == 0 {
		t.Fatalf("the hub's outlet answered the relay owner, whom its policy refuses: %q", out)
	}
	throughRelayStillWorks(t, member(t, h))
	if n := target.accepted.Load(); n != 0 {
		t.Fatalf("the hub's outlet dialed its target for the relay owner, whom its policy refuses: %d connections", n)
	}
}

func TestRelayOwnerCannotReachOtherMembersChannels(t *testing.T) {
	h, bank := hubWithRelay(t)
	carol := member(t, h)
	carolID := identifier(t, carol)
	// The hub's end of carol's channel to it, which carol never used to reach the relay.
	var at string
	for deadline := time.Now().Add(10 * time.Second); at == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("carol has no channel to the hub after 10s")
		}
		var chans []struct{ Address, Peer string }
		if err := json.Unmarshal([]byte(mustCLI(t, "--home", h, "-o", "json", "secure-channel", "list")), &chans); err != nil {
			t.Fatal(err)
		}
		for _, c := range chans {
			if c.Peer == carolID {
				at = c.Address
			}
		}
	}
	if !strings.HasPrefix(at, "/service/") {
		t.Fatalf("carol's channel at the hub = %q", at)
	}
	into := "/project/acme/service/forward_to_postgres" + at
	if out, _, code := cli(t, "--home", bank, "message", "send", "hi carol", "--to", into+"/secure/api/service/echo", "--timeout", "2s"); code == 0 {
		t.Fatalf("the relay owner reached carol's echo through the hub's channel to carol: %q", out)
	}
	// An event that would come out of carol's channel to the hub as the hub's own word.
	forged := `{"revoked":"` + identifier(t, h) + `"}`
	cli(t, "--home", bank, "message", "send", forged, "--to", into+"/service/project.events", "--timeout", "500ms")
	throughRelayStillWorks(t, carol) // carol still trusts the hub
}
