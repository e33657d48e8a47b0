package main

import (
	"strings"
	"testing"
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
