package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNodeLogs: `node logs` shows the background node's log; -n takes the last lines from
// the rotated files too.
func TestNodeLogs(t *testing.T) {
	h := newHome(t)
	mustCLI(t, "--home", h, "node", "create")
	if out := mustCLI(t, "--home", h, "node", "logs"); !strings.Contains(out, "node started") {
		t.Fatalf("node logs = %q, want the node's start", out)
	}
	mustCLI(t, "--home", h, "node", "stop")

	// A log rotated twice: the oldest lines are in node.log.2.
	for name, lines := range map[string]string{"node.log.2": "a\nb\n", "node.log.1": "c\nd\n", "node.log": "e\nf\n"} {
		if err := os.WriteFile(filepath.Join(h, name), []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "e\nf\n"},
		{[]string{"-n", "1"}, "f\n"},
		{[]string{"-n", "3"}, "d\ne\nf\n"},
		{[]string{"-n", "5"}, "b\nc\nd\ne\nf\n"},
		{[]string{"--lines", "100"}, "a\nb\nc\nd\ne\nf\n"},
	} {
		if out := mustCLI(t, append([]string{"--home", h, "node", "logs"}, tt.args...)...); out != tt.want {
			t.Errorf("node logs %v = %q, want %q", tt.args, out, tt.want)
		}
	}
	if _, errOut, code := cli(t, "--home", filepath.Join(t.TempDir(), "none"), "node", "logs"); code == 0 || !strings.Contains(errOut, "no log in") || !strings.Contains(errOut, "journalctl") {
		t.Errorf("node logs without a log: exit %d, %q; want one saying there is none and where to look", code, errOut)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodeLogsFollow: `node logs -f` prints what is appended, and goes on after the log is
// rotated under it.
func TestNodeLogsFollow(t *testing.T) {
	h := filepath.Join(t.TempDir(), "h")
	if err := os.Mkdir(h, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(h, "node.log")
	os.WriteFile(log, []byte("one\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"--home", h, "node", "logs", "-f"}, &out, &errOut) }()
	waitFor := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); out.String() != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("node logs -f printed %q, want %q (stderr %q)", out.String(), want, errOut.String())
			}
		}
	}
	waitFor("one\n")
	appendTo := func(path, s string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, s)
		f.Close()
	}
	appendTo(log, "two\n")
	waitFor("one\ntwo\n")
	// Rotation: the last line lands in the old file just before the rename.
	appendTo(log, "three\n")
	os.Rename(log, log+".1")
	appendTo(log, "four\n")
	waitFor("one\ntwo\nthree\nfour\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("node logs -f exit %d: %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("node logs -f did not stop when its context ended")
	}
}

// TestLogFormats: --log-format json writes one JSON object a line, in the background
// node's node.log too; under systemd the text format leaves the timestamps to the journal.
func TestLogFormats(t *testing.T) {
	h := newHome(t)
	mustCLI(t, "--home", h, "node", "create", "--log-format", "json")
	mustCLI(t, "--home", h, "node", "stop")
	lines := strings.Split(strings.TrimSpace(mustCLI(t, "--home", h, "node", "logs")), "\n")
	if len(lines) < 2 {
		t.Fatalf("node.log has %d lines, want the start and the stop", len(lines))
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["time"] == nil {
			t.Errorf("log line %q: %v; want a JSON object with time and msg", l, err)
		}
	}
	if _, errOut, code := cli(t, "--home", h, "node", "create", "--log-format", "xml"); code != 2 || !strings.Contains(errOut, "want text or json") {
		t.Errorf("--log-format xml: exit %d, %q", code, errOut)
	}

	for _, tt := range []struct {
		env, format string
		time        bool
	}{
		{"", "text", true},
		{"INVOCATION_ID", "text", false},
		{"JOURNAL_STREAM", "text", false},
		{"INVOCATION_ID", "json", true},
	} {
		t.Setenv("INVOCATION_ID", "")
		t.Setenv("JOURNAL_STREAM", "")
		if tt.env != "" {
			t.Setenv(tt.env, "x")
		}
		var buf bytes.Buffer
		log, closer, err := (&daemonFlags{logLevel: "info", logFormat: tt.format}).logger(&buf, new(slog.LevelVar))
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello", slog.String("k", "v"))
		closer.Close()
		hasTime := strings.Contains(buf.String(), "time=") || strings.Contains(buf.String(), `"time":`)
		if hasTime != tt.time || !strings.Contains(buf.String(), "hello") {
			t.Errorf("with %s set, %s: %q; want a timestamp: %v", tt.env, tt.format, buf.String(), tt.time)
		}
	}
}
