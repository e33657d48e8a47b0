package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
)

// Tests of what a newcomer sees (issue 17): refusals with the command and what to type,
// exit codes, one output style, read-only commands that start nothing, and the hub's view of
// its relays.

// TestUsageMistakes: a mistyped subcommand or a wrong number of arguments is refused with
// exit code 2, the command, and what to type; a command group alone prints its help.
func TestUsageMistakes(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"relay", "craete", "x"}, []string{`unknown command "craete" for "adjacent relay"`, `did you mean "create"?`, "see: adjacent relay --help"}},
		{[]string{"relay", "create", "a", "b"}, []string{"adjacent relay create takes at most 1 argument, got 2; usage: adjacent relay create [NAME]"}},
		{[]string{"identity", "show", "a", "b"}, []string{"adjacent identity show takes at most 1 argument, got 2"}},
		{[]string{"tcp-inlet", "delete"}, []string{"adjacent tcp-inlet delete takes 1 argument, got 0; usage: adjacent tcp-inlet delete NAME"}},
		{[]string{"project", "member", "lst"}, []string{`unknown command "lst" for "adjacent project member"`, `did you mean "list"?`}},
		{[]string{"nodex"}, []string{`unknown command "nodex" for "adjacent"`}},
		{[]string{"node", "list", "--bogus"}, []string{"unknown flag: --bogus; see: adjacent node list --help"}},
	}
	for _, tt := range tests {
		_, errOut, code := cli(t, append([]string{"--home", h}, tt.args...)...)
		for _, w := range tt.want {
			if code != exitUsage || !strings.Contains(errOut, w) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("adjacent %v: exit %d, stderr %q; want exit %d and one line containing %q", tt.args, code, errOut, exitUsage, w)
			}
		}
	}
	out, _, code := cli(t, "--home", h, "relay")
	if code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("adjacent relay: exit %d, %q; want its help", code, out)
	}
	if _, err := os.Stat(h); !os.IsNotExist(err) {
		t.Errorf("mistakes created the home %s: %v", h, err)
	}
}

// TestJSONErrors: under --output json an error is a JSON object on stderr with a stable
// error field and the exit code.
func TestJSONErrors(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", "json", "relay", "craete"}, exitUsage, `unknown command "craete"`},
		{[]string{"--output=json", "status"}, exitFailure, "no node in " + h},
		{[]string{"node", "show", "--output", "json"}, exitFailure, "not running"},
	} {
		out, errOut, code := cli(t, append([]string{"--home", h}, tt.args...)...)
		var e struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(errOut), &e); err != nil || code != tt.code || e.ExitCode != tt.code || !strings.Contains(e.Error, tt.want) || out != "" {
			t.Errorf("adjacent %v: exit %d, stdout %q, stderr %q (%v); want exit %d and {\"error\": ...%q..., \"exit_code\": %d}", tt.args, code, out, errOut, err, tt.code, tt.want, tt.code)
		}
	}
}

// TestReadOnlyCommandsStartNoNode: commands that only read say that there is no node, or
// that it is stopped, and start none.
func TestReadOnlyCommandsStartNoNode(t *testing.T) {
	h := newHome(t)
	for _, args := range [][]string{{"identity", "list"}, {"identity", "show"}, {"status"}, {"relay", "list"}, {"tcp-inlet", "list"}, {"policy", "list"}, {"project", "show"}, {"credential", "show"}, {"secure-channel", "list"}} {
		_, errOut, code := cli(t, append([]string{"--home", h}, args...)...)
		if code != exitFailure || !strings.Contains(errOut, "no node in "+h+"; create one with: adjacent --home "+h+" node create") {
			t.Errorf("adjacent %v on a new home: exit %d, %q; want no node and how to create one", args, code, errOut)
		}
	}
	if _, err := os.Stat(h); !os.IsNotExist(err) {
		t.Fatalf("read-only commands created the home: %v", err)
	}
	mustCLI(t, "--home", h, "node", "create")
	if out := mustCLI(t, "--home", h, "tcp-outlet", "list"); !strings.Contains(out, "No outlets; create one with: adjacent tcp-outlet create") {
		t.Errorf("empty tcp-outlet list = %q", out)
	}
	mustCLI(t, "--home", h, "node", "stop")
	_, errOut, code := cli(t, "--home", h, "identity", "list")
	if code != exitFailure || !strings.Contains(errOut, "node in "+h+" is not running; start it with: adjacent --home "+h+" node create") {
		t.Errorf("identity list on a stopped node: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(h, "node.sock")); !os.IsNotExist(err) {
		t.Errorf("identity list started the node: %v", err)
	}
}

// TestNotAHome: a directory with other files and no node is not taken for a home.
func TestNotAHome(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	for _, args := range [][]string{{"identity", "list"}, {"node", "create"}, {"relay", "create", "x"}} {
		_, errOut, code := cli(t, append([]string{"--home", dir}, args...)...)
		if code != exitFailure || !strings.Contains(errOut, dir+" is not a node's home") || strings.Contains(errOut, "chmod") {
			t.Errorf("adjacent --home %s %v: exit %d, %q; want: not a node's home, and no chmod advice", dir, args, code, errOut)
		}
	}
	out := mustCLI(t, "--home", dir, "node", "list")
	if !strings.Contains(out, "not a node's home") || strings.Contains(out, "stopped") {
		t.Errorf("node list in a directory that is not a home = %q", out)
	}
	if out := mustCLI(t, "--home", dir, "-o", "json", "node", "list"); strings.TrimSpace(out) != "[]" {
		t.Errorf("node list -o json in a directory that is not a home = %q, want []", out)
	}
	if _, errOut, code := cli(t, "--home", dir, "node", "delete", "--yes"); code != exitFailure || !strings.Contains(errOut, "not a node's home") {
		t.Errorf("node delete in a directory that is not a home: exit %d, %q", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory now holds %d entries, want only notes.txt", len(entries))
	}
}

// TestFailedProjectCreateLeavesNoListener: a project create that fails does not leave the
// node listening, now or after a restart, and the same address works once the mistake is
// fixed.
func TestFailedProjectCreateLeavesNoListener(t *testing.T) {
	h := newHome(t)
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", addr, "--public-address", "0.0.0.0:" + port}, "members cannot dial 0.0.0.0:" + port},
		{[]string{"--listen", "0.0.0.0:" + port}, "give --public-address HOST:PORT"},
		// Fails after the node listens: the listener is closed again.
		{[]string{"--listen", addr, "--store", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, "member store"},
	} {
		_, errOut, code := cli(t, append([]string{"--home", h, "project", "create", "acme"}, tt.args...)...)
		if code != exitFailure || !strings.Contains(errOut, tt.want) {
			t.Errorf("project create %v: exit %d, %q; want a refusal containing %q", tt.args, code, errOut, tt.want)
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("after project create %v failed, the node listens on %s", tt.args, addr)
		}
	}
	mustCLI(t, "--home", h, "node", "stop")
	mustCLI(t, "--home", h, "node", "create")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("after a restart the node listens on %s again", addr)
	}
	if out := mustCLI(t, "--home", h, "node", "list"); strings.Contains(out, port) {
		t.Fatalf("node list after the failed creates = %q", out)
	}
	mustCLI(t, "--home", h, "project", "create", "acme", "--listen", addr)
}

// TestHubSeesItsRelays: on the hub, relay list and status show every relay registered
// there, its owner and the members that used it; durations in JSON read as durations.
func TestHubSeesItsRelays(t *testing.T) {
	h := hub(t, "acme", "--credential-lifetime", "1h")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	if out := mustCLI(t, "--home", analysis, "message", "send", "hello", "--to", viaRelay); out != "hello\n" {
		t.Fatalf("member to member through the relay = %q", out)
	}
	bankID, analysisID := identifier(t, bank), identifier(t, analysis)

	out, errOut, code := cli(t, "--home", h, "relay", "list")
	if code != 0 || !strings.Contains(out, "RELAY") || !strings.Contains(out, "postgres") || !strings.Contains(out, bankID) || !strings.Contains(out, "1 client") || !strings.Contains(out, analysisID) {
		t.Fatalf("relay list on the hub: exit %d, %q, %q; want postgres, owner %s, client %s", code, out, errOut, bankID, analysisID)
	}
	var st struct {
		Relays []struct {
			Name    string `json:"name"`
			Owner   string `json:"owner"`
			Clients []struct {
				Identifier string `json:"identifier"`
				Messages   uint64 `json:"messages"`
			} `json:"clients"`
		} `json:"relays"`
		Project struct {
			Lifetime string `json:"credential_lifetime"`
		} `json:"project"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "--home", h, "-o", "json", "status")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Relays) != 1 || st.Relays[0].Name != "postgres" || st.Relays[0].Owner != bankID ||
		len(st.Relays[0].Clients) != 1 || st.Relays[0].Clients[0].Identifier != analysisID || st.Relays[0].Clients[0].Messages == 0 {
		t.Fatalf("the hub's status relays = %+v; want postgres owned by %s, used by %s", st.Relays, bankID, analysisID)
	}
	if st.Project.Lifetime != "1h0m0s" {
		t.Errorf("credential_lifetime in JSON = %q, want \"1h0m0s\"", st.Project.Lifetime)
	}
	text := mustCLI(t, "--home", h, "status")
	if !strings.Contains(text, "1 relay\n") || !strings.Contains(text, "postgres") {
		t.Errorf("the hub's status:\n%s", text)
	}
	if text := mustCLI(t, "--home", bank, "status"); !strings.Contains(text, "1 relay\n") || !strings.Contains(text, "postgres") || strings.Contains(text, "\n1 secure channels") {
		t.Errorf("the bank's status:\n%s", text)
	}
}

// TestEnrollMistakes: a damaged ticket and a hub that does not answer are reported with
// what to do.
func TestEnrollMistakes(t *testing.T) {
	h := hub(t, "acme")
	tk := strings.TrimSpace(mustCLI(t, "--home", h, "project", "ticket"))
	damaged := tk[:5] + "B" + tk[6:] // the version byte, after "adj1:"
	m := newHome(t)
	_, errOut, code := cli(t, "--home", m, "enroll", damaged)
	if code != exitFailure || !strings.Contains(errOut, "copy the whole line again") {
		t.Errorf("enroll with a damaged ticket: exit %d, %q", code, errOut)
	}
	mustCLI(t, "--home", h, "node", "stop")
	_, errOut, code = cli(t, "--home", m, "enroll", tk)
	if code != exitFailure || !strings.Contains(errOut, "check that the hub's node runs") || !strings.Contains(errOut, "enroll again with the same ticket") {
		t.Errorf("enroll while the hub is down: exit %d, %q", code, errOut)
	}
}

func TestOutputHelpers(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{size(int64(79)), "79 B"},
		{size(uint64(20002123)), "20 MB"},
		{count(1, "secure channel"), "1 secure channel"},
		{count(0, "secure channel"), "0 secure channels"},
		{count(int64(2), "policy", "policies"), "2 policies"},
		{rate(3_000_000, 2*time.Second), "1.5 MB/s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	var b bytes.Buffer
	table(&b, "No things", []string{"NAME", "SIZE"}, [][]string{{"a", "1 B"}, {"longer", "2 B"}})
	if want := "NAME    SIZE\na       1 B\nlonger  2 B\n"; b.String() != want {
		t.Errorf("table = %q, want %q", b.String(), want)
	}
	b.Reset()
	table(&b, "No things", []string{"NAME"}, nil)
	if b.String() != "No things\n" {
		t.Errorf("empty table = %q", b.String())
	}
}

// TestWatchRates: status --watch computes rates per inlet, outlet and relay from two samples.
func TestWatchRates(t *testing.T) {
	prev := api.Status{
		Inlets:  []api.Inlet{{Name: "a", BytesIn: 1000, BytesOut: 0}},
		Outlets: []api.Outlet{{Name: "db", BytesIn: 5000, BytesOut: 100}},
		Relays:  []api.Relay{{Name: "pg", Clients: []api.RelayClient{{Identifier: "I1", Bytes: 10}}}},
	}
	cur := api.Status{
		Inlets:  []api.Inlet{{Name: "a", Active: 1, BytesIn: 3000, BytesOut: 4000}, {Name: "new", BytesIn: 200}},
		Outlets: []api.Outlet{{Name: "db", BytesIn: 1000, BytesOut: 300}}, // recreated: counts from 0
		Relays:  []api.Relay{{Name: "pg", Clients: []api.RelayClient{{Identifier: "I1", Bytes: 410}, {Identifier: "I2", Bytes: 200}}}},
	}
	r := ratesBetween(prev, cur, 2*time.Second, time.Unix(0, 0))
	want := rates{Time: time.Unix(0, 0).UTC(), Interval: api.Duration(2 * time.Second),
		Inlets:  []resourceRate{{"a", 1, 1000, 2000}, {"new", 0, 100, 0}},
		Outlets: []resourceRate{{"db", 0, 500, 100}},
		Relays:  []resourceRate{{"pg", 2, 300, 0}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("ratesBetween = %+v, want %+v", r, want)
	}
	var b bytes.Buffer
	r.text(&b)
	for _, w := range []string{"KIND", "inlet   a     1 active   1.0 kB/s  2.0 kB/s", "relay   pg    2 clients  300 B/s   -"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("watch frame:\n%s\nwant a line containing %q", b.String(), w)
		}
	}
}

// TestStatusWatch: status --watch prints frames until --count, one JSON object a line.
func TestStatusWatch(t *testing.T) {
	h := newHome(t)
	mustCLI(t, "--home", h, "node", "create")
	out := mustCLI(t, "--home", h, "-o", "json", "status", "--watch", "--interval", "100ms", "--count", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("status --watch --count 2 printed %d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var r struct {
			Interval string `json:"interval"`
			Inlets   []any  `json:"inlets"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Interval == "" || r.Inlets == nil {
			t.Errorf("frame %q: %+v, %v", l, r, err)
		}
	}
	if _, errOut, code := cli(t, "--home", h, "status", "--watch", "--interval", "1ms"); code != exitUsage || !strings.Contains(errOut, "want at least 100ms") {
		t.Errorf("status --watch --interval 1ms: exit %d, %q", code, errOut)
	}
}

// TestCompleteResourceNames: shell completion offers the node's resource names, and starts
// no node to find them.
func TestCompleteResourceNames(t *testing.T) {
	h := newHome(t)
	if out := mustCLI(t, "--home", h, "__complete", "tcp-outlet", "delete", ""); strings.Contains(out, "db") {
		t.Fatalf("completion without a node = %q", out)
	}
	if _, err := os.Stat(h); !os.IsNotExist(err) {
		t.Fatalf("completion created the home: %v", err)
	}
	mustCLI(t, "--home", h, "tcp-outlet", "create", "--to", "5432", "--from", "db")
	mustCLI(t, "--home", h, "identity", "create", "backup")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tcp-outlet", "delete", ""}, "db\n"},
		{[]string{"identity", "show", ""}, "backup\n"},
		{[]string{"policy", "create", "--resource", ""}, "db\n"},
		{[]string{"policy", "create", "--resource-type", ""}, "tcp-outlet\n"},
	} {
		if out := mustCLI(t, append([]string{"--home", h, "__complete"}, tt.args...)...); !strings.Contains(out, tt.want) || !strings.Contains(out, ":4\n") {
			t.Errorf("complete %v = %q, want %q and no file completion", tt.args, out, tt.want)
		}
	}
}

// TestManPages: `adjacent man DIR` (make man) writes a page for every command, with its
// summary, synopsis and examples.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "man", dir)
	for _, page := range []string{"adjacent.1", "adjacent-relay-create.1", "adjacent-status.1", "adjacent-project-member-delete.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		for _, w := range []string{".TH ", ".SH NAME", ".SH SYNOPSIS", ".SH EXAMPLES"} {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s has no %q:\n%s", page, w, b)
			}
		}
	}
}
