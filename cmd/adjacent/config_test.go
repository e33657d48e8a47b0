package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
)

// serviceNode runs `adjacent node run --config FILE` on home, as the unit does, until the test
// ends or stop is called; it returns once the node answers.
func serviceNode(t *testing.T, home, file string) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--home", home, "node", "run", "--config", file)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				exited <- err
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("log of the node in %s:\n%s", home, log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := cli(t, "--home", home, "node", "show"); code == 0 {
			return stop
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("adjacent node run --config %s exited: %v\n%s", file, err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node in %s did not answer within 30s\n%s", home, log.String())
		}
	}
}

// echoOnce sends n random bytes through addr and checks they come back unchanged.
func echoOnce(addr string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return echoChunk(c, n)
}

func echoChunk(c net.Conn, n int) error {
	want := make([]byte, n)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(want); errc <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("the bytes came back changed")
	}
	return nil
}

// eventually retries f for up to 30s (the relay and the path may still be on their way).
func within30s(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func configStatus(t *testing.T, home string) api.Status {
	t.Helper()
	var st api.Status
	if err := json.Unmarshal([]byte(mustCLI(t, "--home", home, "status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func inletOrigins(st api.Status) map[string]string {
	m := map[string]string{}
	for _, in := range st.Inlets {
		m[in.Name] = in.Origin
	}
	return m
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigReload: a hub and two members declared by files. After the files change (an
// outlet added, an inlet removed, a policy changed) and `adjacent reload`, the new outlet
// carries bytes, the removed inlet is gone, a transfer running through an untouched inlet
// goes on byte-exact on the same connection, a CLI-made inlet is left alone and told apart in
// status; an invalid file is refused with file:line: reason and the node keeps its state;
// `config show` prints what `config check` accepts; SIGHUP applies the file too.
func TestConfigReload(t *testing.T) {
	dir := t.TempDir()
	hubHome, bankHome, analysisHome := newHome(t), newHome(t), newHome(t)
	hubFile, bankFile, analysisFile := filepath.Join(dir, "hub.yaml"), filepath.Join(dir, "bank.yaml"), filepath.Join(dir, "analysis.yaml")
	writeConfig(t, hubFile, fmt.Sprintf("hub:\n  project: acme\n  listen: %s\nlog_level: debug\n", freePort(t)))
	serviceNode(t, hubHome, hubFile)

	ticket := func(flags ...string) string {
		path := filepath.Join(dir, fmt.Sprintf("t%d.ticket", time.Now().UnixNano()))
		writeConfig(t, path, mustCLI(t, append([]string{"--home", hubHome, "project", "ticket"}, flags...)...))
		return path
	}
	db, web := echoServer(t), echoServer(t)
	bankV1 := fmt.Sprintf(`enroll:
  ticket: %s
relays: [postgres]
outlets:
  - name: db
    to: %s
policies:
  - type: echo
    allow: "false"
`, ticket("--relay", "postgres"), db)
	writeConfig(t, bankFile, bankV1)
	serviceNode(t, bankHome, bankFile)

	keep, drop, added, byCLI := freePort(t), freePort(t), freePort(t), freePort(t)
	analysisTicket := ticket()
	writeConfig(t, analysisFile, fmt.Sprintf(`enroll:
  ticket: %s
inlets:
  - from: %s
    via: postgres
    to: db
  - from: %s
    via: postgres
    to: db
`, analysisTicket, keep, drop))
	stopAnalysis := serviceNode(t, analysisHome, analysisFile)
	mustCLI(t, "--home", analysisHome, "tcp-inlet", "create", "--from", byCLI, "--via", "postgres", "--to", "db")

	within30s(t, "echo through the inlet "+drop, func() error { return echoOnce(drop, 1<<10) })
	echoToBank := func() (string, int) {
		out, _, code := cli(t, "--home", analysisHome, "message", "send", "hi", "--to", "/project/acme/service/forward_to_postgres/secure/api/service/echo", "--timeout", "5s")
		return out, code
	}
	if out, code := echoToBank(); code == 0 {
		t.Fatalf("the bank's echo answered (%q) though its file's policy for echo is false", out)
	}
	if o := inletOrigins(configStatus(t, analysisHome)); o[keep] != "config" || o[drop] != "config" || o[byCLI] != "" {
		t.Fatalf("inlet origins %v: want config for %s and %s, none for the CLI's %s", o, keep, drop, byCLI)
	}

	// A transfer through the inlet that stays, running while the files change.
	live, err := net.Dial("tcp", keep)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var moved atomic.Int64
	stop, streamed := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				streamed <- nil
				return
			default:
			}
			live.SetDeadline(time.Now().Add(20 * time.Second))
			if err := echoChunk(live, 64<<10); err != nil {
				streamed <- err
				return
			}
			moved.Add(64 << 10)
		}
	}()
	within30s(t, "the live transfer moves", func() error {
		if moved.Load() < 1<<20 {
			return errors.New("less than 1 MiB so far")
		}
		return nil
	})

	// The bank: a new outlet, a changed policy.
	bankV2 := strings.Replace(bankV1, "allow: \"false\"", "allow: \"true\"", 1)
	bankV2 = strings.Replace(bankV2, "policies:", fmt.Sprintf("  - name: web\n    to: %s\npolicies:", web), 1)
	writeConfig(t, bankFile, bankV2)
	out := mustCLI(t, "--home", bankHome, "reload")
	if !strings.Contains(out, "created outlet web") || !strings.Contains(out, "replaced policy type echo") {
		t.Errorf("bank reload said %q", out)
	}
	// The analysis: an inlet removed, one added to the new outlet.
	writeConfig(t, analysisFile, fmt.Sprintf(`enroll:
  ticket: %s
inlets:
  - from: %s
    via: postgres
    to: db
  - from: %s
    via: postgres
    to: web
`, analysisTicket, keep, added))
	out = mustCLI(t, "--home", analysisHome, "reload")
	if !strings.Contains(out, "created inlet 127.0.0.1:") || !strings.Contains(out, "deleted inlet "+drop) {
		t.Errorf("analysis reload said %q", out)
	}

	within30s(t, "echo through the new inlet to the new outlet", func() error { return echoOnce(added, 1<<16) })
	if out, code := echoToBank(); code != 0 || out != "hi\n" {
		t.Errorf("the bank's echo after its policy became true: %q, exit %d", out, code)
	}
	if c, err := net.DialTimeout("tcp", drop, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed inlet %s still accepts connections", drop)
	}
	o := inletOrigins(configStatus(t, analysisHome))
	if _, ok := o[drop]; ok || o[keep] != "config" || o[added] != "config" || o[byCLI] != "" {
		t.Errorf("inlets after reload %v: want %s gone, %s and %s from the config, the CLI's %s kept", o, drop, keep, added, byCLI)
	}
	at := moved.Load()
	within30s(t, "the live transfer goes on after the reloads", func() error {
		if moved.Load() < at+(1<<20) {
			return errors.New("less than 1 MiB more since the reloads")
		}
		return nil
	})
	close(stop)
	if err := <-streamed; err != nil {
		t.Fatalf("the transfer through the untouched inlet broke: %v after %d bytes", err, moved.Load())
	}
	t.Logf("%d bytes echoed byte-exact through %s across both reloads", moved.Load(), keep)

	// An invalid file: refused with file, line and reason; nothing changes.
	before := configStatus(t, analysisHome)
	writeConfig(t, analysisFile, fmt.Sprintf("enroll:\n  ticket: %s\ninlets:\n  - from: %s\n    via: postgres\n    too: db\n", analysisTicket, keep))
	_, errOut, code := cli(t, "--home", analysisHome, "reload")
	if want := analysisFile + ":6: field too not found in Inlet"; code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("reload of an invalid file: exit %d, %q; want %q", code, errOut, want)
	}
	if a, b := inletOrigins(before), inletOrigins(configStatus(t, analysisHome)); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("an invalid file changed the inlets: %v, then %v", a, b)
	}
	if err := echoOnce(added, 1<<10); err != nil {
		t.Errorf("after a refused file, the inlet %s: %v", added, err)
	}
	_, errOut, code = cli(t, "config", "check", analysisFile)
	if code == 0 || !strings.Contains(errOut, analysisFile+":6: ") {
		t.Errorf("config check of the invalid file: exit %d, %q", code, errOut)
	}

	// config show: the effective state, which config check accepts.
	shown := mustCLI(t, "--home", analysisHome, "config", "show")
	showFile := filepath.Join(dir, "shown.yaml")
	writeConfig(t, showFile, shown)
	if out, errOut, code := cli(t, "config", "check", showFile); code != 0 || !strings.Contains(out, "valid: 0 relays, 0 outlets, 3 inlets, 0 policies") {
		t.Errorf("config check of config show's output: exit %d, %q %q\n%s", code, out, errOut, shown)
	}

	// SIGHUP applies the file as reload does.
	sighup := freePort(t)
	writeConfig(t, analysisFile, fmt.Sprintf("enroll:\n  ticket: %s\ninlets:\n  - {from: %q, via: postgres, to: db}\n  - {from: %q, via: postgres, to: web}\n  - {from: %q, via: postgres, to: db}\n", analysisTicket, keep, added, sighup))
	pid := strings.TrimSpace(readFile(filepath.Join(analysisHome, "node.pid")))
	var p int
	fmt.Sscan(pid, &p)
	if p <= 0 {
		t.Fatalf("no pid in %s", analysisHome)
	}
	syscall.Kill(p, syscall.SIGHUP)
	within30s(t, "the inlet SIGHUP added", func() error { return echoOnce(sighup, 1<<10) })
	for _, o := range configStatus(t, bankHome).Outlets {
		if o.Origin != "config" {
			t.Errorf("the bank's outlet %s has origin %q, want config", o.Name, o.Origin)
		}
	}

	// A resource that fails (its port is taken) is reported, the rest applied, and it is
	// tried again on the next reload.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, analysisFile, fmt.Sprintf("enroll:\n  ticket: %s\ninlets:\n  - {from: %q, via: postgres, to: db}\n  - {from: %q, via: postgres, to: web}\n  - {from: %q, via: postgres, to: db}\n  - {from: %q, via: postgres, to: db}\n", analysisTicket, keep, added, sighup, taken.Addr()))
	if _, errOut, code := cli(t, "--home", analysisHome, "reload"); code == 0 || !strings.Contains(errOut, "applied in part: inlet "+taken.Addr().String()+": ") {
		t.Errorf("reload with an inlet on a taken port: exit %d, %q", code, errOut)
	}
	taken.Close()
	if out := mustCLI(t, "--home", analysisHome, "reload"); !strings.Contains(out, "created inlet "+taken.Addr().String()) {
		t.Errorf("the reload after the port was freed said %q", out)
	}

	// A restart with a changed file: the file's inlet that is gone goes, the CLI's stays, and
	// the ticket, used up, is not redeemed again.
	stopAnalysis()
	writeConfig(t, analysisFile, fmt.Sprintf("enroll:\n  ticket: %s\ninlets:\n  - {from: %q, via: postgres, to: db}\n", analysisTicket, keep))
	serviceNode(t, analysisHome, analysisFile)
	o = inletOrigins(configStatus(t, analysisHome))
	if len(o) != 2 || o[keep] != "config" || o[byCLI] != "" {
		t.Errorf("inlets after a restart with a smaller file: %v, want %s (config) and %s (CLI)", o, keep, byCLI)
	}
	within30s(t, "echo through the kept inlet after the restart", func() error { return echoOnce(keep, 1<<10) })
}
