package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the adjacent binary: the node that the CLI starts in the
// background is this executable run again with ADJACENT_TEST_MAIN set.
func TestMain(m *testing.M) {
	if os.Getenv("ADJACENT_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Setenv("ADJACENT_TEST_MAIN", "1")
	os.Exit(m.Run())
}

// cli runs one command line in-process and returns its output and exit code.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("adjacent %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// newHome returns a fresh home whose node is stopped when the test ends.
func newHome(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	t.Cleanup(func() { cli(t, "--home", dir, "node", "stop") })
	return dir
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMessageSendToEcho(t *testing.T) {
	a, b := newHome(t), newHome(t)
	addr := freePort(t)
	mustCLI(t, "--home", a, "node", "create", "--listen", addr)
	_, port, _ := net.SplitHostPort(addr)
	// B's node is started on demand.
	out := mustCLI(t, "--home", b, "message", "send", "hello", "--to", "/ip4/127.0.0.1/tcp/"+port+"/service/echo")
	if out != "hello\n" {
		t.Fatalf("message send printed %q, want %q", out, "hello\n")
	}
	out = mustCLI(t, "--home", b, "--output", "json", "message", "send", "again", "--to", "/ip4/127.0.0.1/tcp/"+port+"/service/echo")
	var reply struct{ Reply string }
	if err := json.Unmarshal([]byte(out), &reply); err != nil || reply.Reply != "again" {
		t.Fatalf("json output %q: %v", out, err)
	}
	fi, err := os.Stat(a)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("home mode = %v, %v; want 0700", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(a, "node.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestNodeLifecycle(t *testing.T) {
	a := newHome(t)
	mustCLI(t, "--home", a, "node", "create")
	_, errOut, code := cli(t, "--home", a, "node", "create")
	if code == 0 || !strings.Contains(errOut, "already running") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("second node create: exit %d, stderr %q; want one line saying it is already running", code, errOut)
	}
	out := mustCLI(t, "--home", a, "-o", "json", "node", "show")
	var info struct{ Pid int }
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Pid == 0 {
		t.Fatalf("node show json %q: %v", out, err)
	}
	mustCLI(t, "--home", a, "node", "stop")
	if _, err := os.Stat(filepath.Join(a, "node.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket still there after node stop: %v", err)
	}
	if alive(info.Pid) {
		t.Fatalf("daemon pid %d still alive after node stop", info.Pid)
	}
	if _, errOut, code := cli(t, "--home", a, "node", "show"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Fatalf("node show on a stopped node: exit %d, %q", code, errOut)
	}
	// Delete asks for confirmation, then removes the home.
	if _, errOut, code := cli(t, "--home", a, "node", "delete"); code == 0 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("node delete without --yes: exit %d, %q", code, errOut)
	}
	mustCLI(t, "--home", a, "node", "delete", "--yes")
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Fatalf("home still there after node delete: %v", err)
	}
}

func alive(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") { // gone, or a zombie awaiting its parent
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func TestCLIMistakes(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nodex"}, `unknown command "nodex"`},
		{[]string{"node", "create", "--bogus"}, "unknown flag: --bogus; see: adjacent node create --help"},
		{[]string{"message", "send", "hi"}, "needs --to ROUTE"},
		{[]string{"message", "send", "--to", "/service/echo"}, "takes 1 argument(s), got 0"},
		{[]string{"message", "send", "hi", "--to", "ip4/x"}, "must start with /"},
		{[]string{"-o", "yaml", "node", "list"}, `--output "yaml": want text or json`},
		{[]string{"node", "create", "--log-level", "loud"}, "want debug, info, warn or error"},
	}
	for _, tt := range tests {
		_, errOut, code := cli(t, append([]string{"--home", h}, tt.args...)...)
		if code == 0 || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("adjacent %v: exit %d, stderr %q; want one line containing %q", tt.args, code, errOut, tt.want)
		}
	}
	cli(t, "--home", h, "node", "stop")
}

func TestRefusesOpenHome(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	if err := os.Mkdir(h, 0o755); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := cli(t, "--home", h, "node", "create", "--foreground")
	if code == 0 || !strings.Contains(errOut, "chmod 700") {
		t.Fatalf("node on a 0755 home: exit %d, %q; want a refusal naming chmod 700", code, errOut)
	}
}
