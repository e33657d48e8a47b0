package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTicketNonsenseValuesRefused: values a ticket cannot sensibly have are refused when the
// ticket is made, with one line naming the flag and the bounds, never replaced by defaults;
// names that relay create would refuse are refused here already.
func TestTicketNonsenseValuesRefused(t *testing.T) {
	h := hub(t, "acme")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--usage-count", "0"}, []string{"usage count 0", "from 1 to 1000", "--usage-count"}},
		{[]string{"--usage-count", "-3"}, []string{"usage count -3", "--usage-count"}},
		{[]string{"--usage-count", "1001"}, []string{"usage count 1001", "from 1 to 1000"}},
		{[]string{"--expires-in", "-1m"}, []string{"expiry -1m0s", "--expires-in"}},
		{[]string{"--expires-in", "0s"}, []string{"expiry 0s", "from 1s to 168h0m0s"}},
		{[]string{"--expires-in", "169h"}, []string{"expiry 169h0m0s", "from 1s to 168h0m0s"}},
		{[]string{"--relay", "bad name!"}, []string{`relay name "bad name!"`, "--relay"}},
		{[]string{"--attribute", "relay=a/b"}, []string{`attribute relay="a/b"`}},
		{[]string{"--attribute", "admin=true"}, []string{`"admin" is set by the authority`}},
	} {
		out, errOut, code := cli(t, append([]string{"--home", h, "project", "ticket"}, tt.args...)...)
		ok := code == 1 && out == "" && strings.Count(errOut, "\n") == 1
		for _, w := range tt.want {
			ok = ok && strings.Contains(errOut, w)
		}
		if !ok {
			t.Errorf("project ticket %q: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", tt.args, code, out, errOut, tt.want)
		}
	}
	// The bounds themselves are good tickets.
	mustCLI(t, "--home", h, "project", "ticket", "--usage-count", "1000", "--expires-in", "168h", "--relay", "*")
}

// TestTicketDiesWithEnroller: a ticket made by an enroller member cannot be redeemed once the
// hub deleted that member.
func TestTicketDiesWithEnroller(t *testing.T) {
	h := hub(t, "acme")
	enroller := member(t, h, "--enroller")
	tk := strings.TrimSpace(mustCLI(t, "--home", enroller, "project", "ticket", "--usage-count", "5"))
	mustCLI(t, "--home", newHome(t), "enroll", tk) // good while its maker is a member
	mustCLI(t, "--home", h, "project", "member", "delete", identifier(t, enroller))
	_, errOut, code := cli(t, "--home", newHome(t), "enroll", tk)
	if code == 0 || !strings.Contains(errOut, "does not know the ticket") {
		t.Fatalf("enroll with the ticket of a deleted enroller: exit %d, %q; want a refusal", code, errOut)
	}
}

// livePortal is a world with a blast server behind the bank's outlet "blast" (made with the
// extra outletFlags) and an inlet on analysis at 127.0.0.1:17000 to it.
func livePortal(t *testing.T, outletFlags ...string) *world {
	w := newWorld(t)
	w.join()
	go w.blast(w.bank, time.Hour, "serve", "-listen", "127.0.0.1:7000")
	w.adj(w.bank, w.bankHome, append([]string{"tcp-outlet", "create", "--to", "7000", "--from", "blast"}, outletFlags...)...)
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "17000", "--via", "postgres", "--to", "blast")
	w.throttle("200mbit") // the transfer must not take every core
	return w
}

// cutByPolicy runs a transfer through the portal, makes change, and checks that the
// transfer then ends in a reset at the client, that a new connection is refused, and that
// the node whose policy refused says why in its log. It logs how long the cut took.
func cutByPolicy(t *testing.T, w *world, change func(), judge, reason string) {
	t.Helper()
	cutByPolicyAt(t, w, "127.0.0.1:17000", "portal sessions cut by policy", change, judge, reason)
}

// cutByPolicyAt is cutByPolicy for the portal at addr, whose judge logs logged with reason.
func cutByPolicyAt(t *testing.T, w *world, addr, logged string, change func(), judge, reason string) {
	t.Helper()
	result := w.transfer(addr)
	time.Sleep(time.Second) // the transfer runs
	start := time.Now()
	change()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("%v\n%s", err, w.logs())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the transfer still runs 10s after the change\n%s", w.logs())
	}
	t.Logf("the live transfer was reset %v after the change", time.Since(start).Round(time.Millisecond))
	w.refused(t, addr, 5*time.Second)
	if log := readFile(filepath.Join(judge, "node.log")); !strings.Contains(log, logged) || !strings.Contains(log, reason) {
		t.Fatalf("the node whose policy refused does not log the cut with %q\n%s", reason, w.logs())
	}
}

// TestTightenedOutletPolicyCutsLiveSessions: a policy created for an outlet applies to the
// sessions it already carries, not only to new ones.
func TestTightenedOutletPolicyCutsLiveSessions(t *testing.T) {
	w := livePortal(t)
	cutByPolicy(t, w, func() {
		w.adj(w.bank, w.bankHome, "policy", "create", "--resource", "blast", "--allow", `(= subject.role "nobody")`)
	}, w.bankHome, "denied by the outlet's policy")
}

// TestTightenedOutletPolicyCutsPacketFlows: the same for a packet-mode inlet's flows, which
// no session carries: the outlet resets them at both ends.
func TestTightenedOutletPolicyCutsPacketFlows(t *testing.T) {
	w := livePortal(t)
	w.adj(w.analysis, w.analysisHome, "tcp-inlet", "create", "--from", "10.99.0.7:7000", "--via", "postgres", "--to", "blast", "--tun", "--raw")
	cutByPolicyAt(t, w, "10.99.0.7:7000", "packet flows cut by policy", func() {
		w.adj(w.bank, w.bankHome, "policy", "create", "--resource", "blast", "--allow", `(= subject.role "nobody")`)
	}, w.bankHome, "denied by the outlet's policy")
}

// TestMemberLosingAttributeLosesSessions: an outlet that admits analysts cuts a member's live
// session once the hub gives the member attributes without role=analyst.
func TestMemberLosingAttributeLosesSessions(t *testing.T) {
	w := livePortal(t, "--allow", `(= subject.role "analyst")`)
	id := strings.TrimSpace(w.adj(w.analysis, w.analysisHome, "identity", "show"))
	cutByPolicy(t, w, func() {
		w.adj(w.hub, w.hubHome, "project", "member", "add", id, "--attribute", "role=visitor")
	}, w.bankHome, "denied by the outlet's policy")
	if cred := w.adj(w.analysis, w.analysisHome, "credential", "show"); !strings.Contains(cred, "role=visitor") {
		t.Fatalf("analysis's credential after the change = %q", cred)
	}
}

// TestTightenedInletPolicyCutsLiveSessions: the inlet's policy, over the outlet node's
// identity, applies to live sessions, not only when the inlet builds its path.
func TestTightenedInletPolicyCutsLiveSessions(t *testing.T) {
	w := livePortal(t)
	cutByPolicy(t, w, func() {
		w.adj(w.analysis, w.analysisHome, "policy", "create", "--resource", "127.0.0.1:17000", "--allow", `(= subject.role "nobody")`)
	}, w.analysisHome, "denied by the inlet's policy")
	if log := readFile(filepath.Join(w.analysisHome, "node.log")); !strings.Contains(log, "does not satisfy the inlet's policy") {
		t.Fatalf("analysis does not say why it refused the new connection\n%s", w.logs())
	}
}
