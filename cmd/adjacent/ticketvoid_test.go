package main

import (
	"strings"
	"testing"
)

// TestDeletedMemberTicketVoid: a member deleted from the project cannot come back under a fresh
// identity with the multi-use ticket it enrolled with: `project member delete` voids that
// ticket and says so, and enrolling with it again is refused as used.
func TestDeletedMemberTicketVoid(t *testing.T) {
	h := hub(t, "acme")
	tk := strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket", "--usage-count", "5"))
	mallory := newHome(t)
	mustCLI(t, "--home", mallory, "enroll", tk)
	out := mustCLI(t, "--home", h, "project", "member", "delete", identifier(t, mallory))
	if !strings.Contains(out, "Voided the ticket it enrolled with (4 uses were left)") {
		t.Errorf("member delete said %q, want it to say the ticket was voided", out)
	}
	again := newHome(t)
	if stdout, stderr, code := cli(t, "--home", again, "enroll", tk); code == 0 || !strings.Contains(stderr, "already used") {
		t.Errorf("enroll with the deleted member's ticket under a fresh identity: code %d, %q %q; want refused as used", code, stdout, stderr)
	}
}
