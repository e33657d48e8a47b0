package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refusalWorld is a hub, a bank holding the relay postgres with an outlet "outlet" to an echo
// server and an outlet "strict" only admins may use, and analysis, a member with role=analyst.
func refusalWorld(t *testing.T) (bank, analysis string) {
	t.Helper()
	h := hub(t, "acme")
	bank = member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	target := echoServer(t)
	mustCLI(t, "--home", bank, "tcp-outlet", "create", "--to", target)
	mustCLI(t, "--home", bank, "tcp-outlet", "create", "--to", target, "--from", "strict", "--allow", `(= subject.role "admin")`)
	analysis = member(t, h, "--attribute", "role=analyst")
	return bank, analysis
}

// TestInletCreateChecksPath: creating an inlet opens its path once and asks the outlet; a
// relay or outlet that does not exist, or an outlet that refuses the caller, fails the create
// with the reason and what to do, and leaves no inlet behind; --no-wait creates it anyway.
func TestInletCreateChecksPath(t *testing.T) {
	_, analysis := refusalWorld(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no such relay", []string{"--via", "nonexistent"},
			[]string{`relay "nonexistent" not found at the hub`, "adjacent relay create nonexistent", "--no-wait"}},
		{"no such outlet", []string{"--via", "postgres", "--to", "nosuchoutlet"},
			[]string{`no outlet "nosuchoutlet" at the outlet's node`, "adjacent tcp-outlet create --to [HOST:]PORT --from nosuchoutlet"}},
		{"the outlet's policy refuses", []string{"--via", "postgres", "--to", "strict"},
			[]string{"denied by the outlet's policy", "ask the outlet's owner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			_, errOut, code := cli(t, append([]string{"--home", analysis, "tcp-inlet", "create", "--from", port}, tc.args...)...)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d: %s", code, exitFailure, errOut)
			}
			t.Log(strings.TrimSpace(errOut))
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Fatalf("tcp-inlet create said %q, want %q in it", errOut, w)
				}
			}
			if out := mustCLI(t, "--home", analysis, "tcp-inlet", "list"); strings.Contains(out, port) {
				t.Fatalf("the refused inlet is listed:\n%s", out)
			}
			if l, err := net.Listen("tcp", port); err != nil { // nothing listens there
				t.Fatalf("the refused inlet still listens: %v", err)
			} else {
				l.Close()
			}
			out := mustCLI(t, append([]string{"--home", analysis, "tcp-inlet", "create", "--from", port, "--no-wait"}, tc.args...)...)
			if !strings.Contains(out, "not checked") {
				t.Fatalf("tcp-inlet create --no-wait printed %q", out)
			}
		})
	}
	// A path that works: the create says connected, and a client echoes through it.
	port := freePort(t)
	if out := mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", port, "--via", "postgres"); !strings.Contains(out, "connected through") {
		t.Fatalf("tcp-inlet create printed %q", out)
	}
	if err := echoes(port); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalReasonShown: a member whose connections an outlet's policy refuses sees why,
// with a count, in tcp-inlet list, status and status -o json, and in the log line of the
// refused client; so does one whose inlet names a relay that does not exist.
func TestRefusalReasonShown(t *testing.T) {
	_, analysis := refusalWorld(t)
	strict, missing := freePort(t), freePort(t)
	mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", strict, "--via", "postgres", "--to", "strict", "--no-wait")
	mustCLI(t, "--home", analysis, "tcp-inlet", "create", "--from", missing, "--via", "nonexistent", "--no-wait")
	for _, addr := range []string{strict, strict, missing} {
		if err := echoes(addr); err == nil {
			t.Fatalf("a client of %s was served", addr)
		}
	}
	list := mustCLI(t, "--home", analysis, "tcp-inlet", "list")
	t.Log("\n" + list)
	status := mustCLI(t, "--home", analysis, "status")
	for _, out := range []string{list, status} {
		for _, want := range []string{"REFUSED", strict + ": 2 connections refused", "denied by the outlet's policy",
			missing + ": 1 connection refused", `no service "forward_to_nonexistent"`} {
			if !strings.Contains(out, want) {
				t.Fatalf("want %q in:\n%s", want, out)
			}
		}
	}
	var st struct {
		Inlets []struct {
			Name          string
			Refused       int64
			LastRefusal   string     `json:"last_refusal"`
			LastRefusalAt *time.Time `json:"last_refusal_at"`
		}
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "--home", analysis, "-o", "json", "status")), &st); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, in := range st.Inlets {
		switch in.Name {
		case strict:
			found++
			if in.Refused != 2 || !strings.Contains(in.LastRefusal, "denied by the outlet's policy") || in.LastRefusalAt == nil {
				t.Fatalf("status -o json: %+v", in)
			}
		case missing:
			found++
			if in.Refused != 1 || !strings.Contains(in.LastRefusal, "no service") {
				t.Fatalf("status -o json: %+v", in)
			}
		}
	}
	if found != 2 {
		t.Fatalf("status -o json lists %d of the two inlets: %+v", found, st.Inlets)
	}
	log, _ := os.ReadFile(filepath.Join(analysis, "node.log"))
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "portal connection not opened") && strings.Contains(line, "denied by the outlet's policy") {
			return
		}
	}
	t.Fatalf("no log line of a refused client with the reason:\n%s", log)
}

// TestMessageSendUnknownServiceFailsFast: a message to a service a node does not have, or
// does not open to the sender, is refused by that node at once: message send says so instead
// of waiting for its timeout.
func TestMessageSendUnknownServiceFailsFast(t *testing.T) {
	a, b := newHome(t), newHome(t)
	addr := freePort(t)
	mustCLI(t, "--home", a, "node", "create", "--listen", addr)
	_, port, _ := net.SplitHostPort(addr)
	at := "/ip4/127.0.0.1/tcp/" + port
	for _, tc := range []struct{ to, want string }{
		{at + "/service/echo", `no service "echo" at ` + at + " open to this node"},
		{at + "/service/nosuch", `no service "nosuch" at ` + at},
		{at + "/secure/api/service/nosuch", `no service "nosuch" at ` + at + "/secure/api"},
	} {
		_, errOut, code := cli(t, "--home", b, "message", "send", "hi", "--to", tc.to, "--timeout", "1m")
		t.Log(strings.TrimSpace(errOut))
		if code != exitFailure || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "deadline") {
			t.Fatalf("message send --to %s: exit %d, %q; want %q", tc.to, code, errOut, tc.want)
		}
	}
}
