package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// hub starts a hub for project name and returns its home.
func hub(t *testing.T, name string, extra ...string) string {
	t.Helper()
	h := newHome(t)
	mustCLI(t, append([]string{"--home", h, "project", "create", name, "--listen", freePort(t)}, extra...)...)
	return h
}

// member enrolls a new home with a ticket made on hub with the given ticket flags.
func member(t *testing.T, hubHome string, ticketFlags ...string) string {
	t.Helper()
	h := newHome(t)
	tk := strings.TrimSpace(mustCLI(t, append([]string{"--home", hubHome, "project", "ticket"}, ticketFlags...)...))
	mustCLI(t, "--home", h, "enroll", tk)
	return h
}

func identifier(t *testing.T, home string) string {
	t.Helper()
	return strings.TrimSpace(mustCLI(t, "--home", home, "identity", "show"))
}

const viaRelay = "/project/acme/service/forward_to_postgres/secure/api/service/echo"

// TestProjectStory: members reach each other through the hub's relay, with end-to-end
// channels; outsiders and other projects' members are refused with a reason.
func TestProjectStory(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h, "--attribute", "role=analyst")

	if out := mustCLI(t, "--home", analysis, "message", "send", "hello", "--to", viaRelay); out != "hello\n" {
		t.Fatalf("member to member through the relay = %q", out)
	}
	cred := mustCLI(t, "--home", analysis, "credential", "show")
	if !strings.Contains(cred, "role=analyst") || !strings.Contains(cred, "project_member=true") {
		t.Fatalf("credential show = %q", cred)
	}

	// A node outside the project: it gets a channel to the hub, to enroll, but through it
	// reaches only the authority: the hub refuses its handshake through the relay.
	hubAddr := jsonField(t, mustCLI(t, "--home", h, "-o", "json", "project", "show"), "hub")
	outsider := newHome(t)
	_, errOut, code := cli(t, "--home", outsider, "message", "send", "hi", "--to", hubAddr+"/secure/api/service/forward_to_postgres/secure/api/service/echo")
	if code == 0 || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "only enrollment") {
		t.Fatalf("outsider through the relay: exit %d, %q", code, errOut)
	}
	// A member of another project does not even get a channel: the two sides trust
	// different authorities.
	other := hub(t, "other")
	stranger := member(t, other)
	_, errOut, code = cli(t, "--home", stranger, "message", "send", "hi", "--to", hubAddr+"/secure/api/service/forward_to_postgres/secure/api/service/echo")
	if code == 0 || !strings.Contains(errOut, "is not a trusted authority") {
		t.Fatalf("member of another project through the relay: exit %d, %q", code, errOut)
	}

	// A second identity cannot take the relay name; the first keeps its traffic.
	thief := member(t, h, "--relay", "*")
	_, errOut, code = cli(t, "--home", thief, "relay", "create", "postgres")
	if code == 0 || !strings.Contains(errOut, `relay "postgres" is held by `+identifier(t, bank)) {
		t.Fatalf("relay takeover: exit %d, %q", code, errOut)
	}
	if out := mustCLI(t, "--home", analysis, "message", "send", "still", "--to", viaRelay); out != "still\n" {
		t.Fatalf("after the takeover attempt = %q", out)
	}

	// A policy needing two attributes refuses a member with one of them.
	mustCLI(t, "--home", bank, "policy", "create", "--resource-type", "echo", "--allow", `(and (= subject.role "analyst") (= subject.team "data"))`)
	if _, _, code := cli(t, "--home", analysis, "message", "send", "x", "--to", viaRelay, "--timeout", "1s"); code == 0 {
		t.Fatal("echo answered a member lacking subject.team")
	}
	mustCLI(t, "--home", bank, "policy", "create", "--resource-type", "echo", "--allow", `(= subject.role "analyst")`)
	if out := mustCLI(t, "--home", analysis, "message", "send", "ok", "--to", viaRelay); out != "ok\n" {
		t.Fatalf("after relaxing the policy = %q", out)
	}
	if _, _, code := cli(t, "--home", thief, "message", "send", "x", "--to", viaRelay, "--timeout", "1s"); code == 0 {
		t.Fatal("echo answered a member without role=analyst")
	}

	// Deleting a member closes its live channels within seconds.
	sc := strings.TrimSpace(mustCLI(t, "--home", analysis, "secure-channel", "create", "--to", "/project/acme/service/forward_to_postgres/service/api"))
	if !strings.HasPrefix(sc, "/service/") {
		t.Fatalf("secure-channel create = %q", sc)
	}
	// The initiator is done after sending the last handshake message; the responder only
	// when it has arrived, so the bank may list the channel a moment later.
	aID := identifier(t, analysis)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(mustCLI(t, "--home", bank, "secure-channel", "list"), aID); {
		if time.Now().After(deadline) {
			t.Fatal("bank has no channel with analysis after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	mustCLI(t, "--home", h, "project", "member", "delete", aID)
	for strings.Contains(mustCLI(t, "--home", bank, "secure-channel", "list"), aID) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the deleted member's channel at the bank is still open after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(mustCLI(t, "--home", h, "project", "member", "list"), aID) {
		t.Fatal("deleted member still listed")
	}
}

func TestTicketRefusals(t *testing.T) {
	h := hub(t, "acme")
	tk := strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket"))
	mustCLI(t, "--home", newHome(t), "enroll", tk)
	_, errOut, code := cli(t, "--home", newHome(t), "enroll", tk)
	if code == 0 || !strings.Contains(errOut, "already used") {
		t.Fatalf("second use of a ticket: exit %d, %q", code, errOut)
	}
	short := strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket", "--expires-in", "1s"))
	time.Sleep(1100 * time.Millisecond)
	_, errOut, code = cli(t, "--home", newHome(t), "enroll", short)
	if code == 0 || !strings.Contains(errOut, "expired") {
		t.Fatalf("expired ticket: exit %d, %q", code, errOut)
	}
	// A ticket pointing at another project's hub: that hub is not the ticket's authority.
	other := hub(t, "other")
	parsed, err := ticket.Parse(strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket")))
	if err != nil {
		t.Fatal(err)
	}
	parsed.Hub = jsonField(t, mustCLI(t, "--home", other, "-o", "json", "project", "show"), "hub")
	_, errOut, code = cli(t, "--home", newHome(t), "enroll", parsed.String())
	if code == 0 || !strings.Contains(errOut, "is not the authority of project acme") {
		t.Fatalf("ticket for the wrong hub: exit %d, %q", code, errOut)
	}
	// A ticket file works too.
	file := filepath.Join(t.TempDir(), "member.ticket")
	os.WriteFile(file, []byte(mustCLI(t, "--home", h, "project", "ticket")), 0o600)
	mustCLI(t, "--home", newHome(t), "enroll", file)
}

// TestPostgresMemberStore runs a hub whose members and tickets live in a real PostgreSQL.
func TestPostgresMemberStore(t *testing.T) {
	dsn := pgtest.Start(t)
	h := hub(t, "acme", "--store", dsn)
	m := member(t, h, "--attribute", "team=data")
	list := mustCLI(t, "--home", h, "project", "member", "list")
	if !strings.Contains(list, identifier(t, m)) || !strings.Contains(list, "team=data") {
		t.Fatalf("member list from PostgreSQL = %q", list)
	}
	// The hub restarts and still knows its members.
	mustCLI(t, "--home", h, "node", "stop")
	mustCLI(t, "--home", h, "node", "create")
	if list := mustCLI(t, "--home", h, "project", "member", "list"); !strings.Contains(list, identifier(t, m)) {
		t.Fatalf("after restart = %q", list)
	}
}

// TestCredentialRefresh: with 10-second credentials, members refresh theirs at half-life and
// re-present them in open channels, which therefore outlive the first credential.
func TestCredentialRefresh(t *testing.T) {
	h := hub(t, "acme", "--credential-lifetime", "10s")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	sc := strings.TrimSpace(mustCLI(t, "--home", analysis, "secure-channel", "create", "--to", "/project/acme/service/forward_to_postgres/service/api"))
	first := jsonField(t, mustCLI(t, "--home", analysis, "-o", "json", "credential", "show"), "expires")
	time.Sleep(13 * time.Second)
	if out := mustCLI(t, "--home", analysis, "message", "send", "later", "--to", sc+"/service/echo"); out != "later\n" {
		t.Fatalf("through a channel older than the first credential = %q", out)
	}
	if now := jsonField(t, mustCLI(t, "--home", analysis, "-o", "json", "credential", "show"), "expires"); now == first {
		t.Fatalf("credential not refreshed: still expires %s", now)
	}
}

// TestHubRestart: members reconnect to a restarted hub by themselves and re-register their
// relays.
func TestHubRestart(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	mustCLI(t, "--home", analysis, "message", "send", "before", "--to", viaRelay)
	mustCLI(t, "--home", h, "node", "stop")
	mustCLI(t, "--home", h, "node", "create")
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code := cli(t, "--home", analysis, "message", "send", "after", "--to", viaRelay, "--timeout", "2s")
		if code == 0 && out == "after\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no path through the restarted hub within 20s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
