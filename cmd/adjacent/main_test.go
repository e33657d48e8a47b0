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
	t.Cleanup(func() {
		cli(t, "--home", dir, "node", "stop")
		// The daemons are this test binary too: under -race they report races in their log.
		if b, err := os.ReadFile(filepath.Join(dir, "node.log")); err == nil {
			if i := strings.Index(string(b), "WARNING: DATA RACE"); i >= 0 {
				t.Errorf("the node in %s reported a data race:\n%s", dir, b[i:min(len(b), i+3000)])
			}
		}
	})
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
	// B's node is started on demand; the message goes through a secure channel to A's echo.
	secureEcho := "/ip4/127.0.0.1/tcp/" + port + "/secure/api/service/echo"
	out := mustCLI(t, "--home", b, "message", "send", "hello", "--to", secureEcho)
	if out != "hello\n" {
		t.Fatalf("message send printed %q, want %q", out, "hello\n")
	}
	// Echo is not opened to transports: without the channel the node refuses the message.
	_, errOut, code := cli(t, "--home", b, "message", "send", "hello", "--to", "/ip4/127.0.0.1/tcp/"+port+"/service/echo")
	if code == 0 || !strings.Contains(errOut, `no service "echo" at /ip4/127.0.0.1/tcp/`+port) {
		t.Fatalf("plain message to echo: exit %d, %q; want no service", code, errOut)
	}
	out = mustCLI(t, "--home", b, "--output", "json", "message", "send", "again", "--to", secureEcho)
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
		{[]string{"message", "send", "--to", "/service/echo"}, "adjacent message send takes 1 argument, got 0; usage: adjacent message send TEXT --to ROUTE"},
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

func TestSecureChannelCLI(t *testing.T) {
	a, b := newHome(t), newHome(t)
	addr := freePort(t)
	mustCLI(t, "--home", a, "node", "create", "--listen", addr)
	_, port, _ := net.SplitHostPort(addr)
	api := "/ip4/127.0.0.1/tcp/" + port + "/service/api"
	idA := strings.TrimSpace(mustCLI(t, "--home", a, "identity", "show"))
	if !strings.HasPrefix(idA, "I") || len(idA) != 65 {
		t.Fatalf("identity show printed %q", idA)
	}
	sc := strings.TrimSpace(mustCLI(t, "--home", b, "secure-channel", "create", "--to", api, "--authorized", idA))
	if !strings.HasPrefix(sc, "/service/sc.") {
		t.Fatalf("secure-channel create printed %q", sc)
	}
	if out := mustCLI(t, "--home", b, "message", "send", "through", "--to", sc+"/service/echo"); out != "through\n" {
		t.Fatalf("message through the channel = %q", out)
	}
	// A's side lists the channel with B as the authenticated peer.
	idB := strings.TrimSpace(mustCLI(t, "--home", b, "identity", "show"))
	var chans []struct{ Address, Peer string }
	if err := json.Unmarshal([]byte(mustCLI(t, "--home", a, "-o", "json", "secure-channel", "list")), &chans); err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 || chans[0].Peer != idB {
		t.Fatalf("A's channels = %+v, want one with peer %s", chans, idB)
	}
	// An identity not in --authorized is rejected.
	other := strings.TrimSpace(mustCLI(t, "--home", b, "identity", "create", "other"))
	_, errOut, code := cli(t, "--home", b, "secure-channel", "create", "--to", api, "--authorized", other)
	if code == 0 || !strings.Contains(errOut, "not authorized") {
		t.Fatalf("channel to a peer not in --authorized: exit %d, %q", code, errOut)
	}
	mustCLI(t, "--home", b, "secure-channel", "delete", sc)
	if _, _, code := cli(t, "--home", b, "message", "send", "x", "--to", sc+"/service/echo", "--timeout", "300ms"); code == 0 {
		t.Fatal("message through a deleted channel got a reply")
	}
}

// jsonField returns a top-level string field of a JSON object.
func jsonField(t *testing.T, data, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	v, _ := m[field].(string)
	return v
}
