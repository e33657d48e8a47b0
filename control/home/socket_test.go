package home

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/control/vault"
)

func TestWithSocket(t *testing.T) {
	h := Home{Dir: "/h"}
	t.Setenv(SocketEnvVar, "")
	if got, _ := h.WithSocket(""); got.Socket() != "/h/node.sock" {
		t.Errorf("WithSocket(\"\").Socket() = %q, want /h/node.sock", got.Socket())
	}
	t.Setenv(SocketEnvVar, "/run/adjacent/env.sock")
	if got, _ := h.WithSocket(""); got.Socket() != "/run/adjacent/env.sock" {
		t.Errorf("with $%s: Socket() = %q, want /run/adjacent/env.sock", SocketEnvVar, got.Socket())
	}
	if got, _ := h.WithSocket("/run/adjacent/node.sock"); got.Socket() != "/run/adjacent/node.sock" {
		t.Errorf("WithSocket(flag).Socket() = %q, want the flag over the environment", got.Socket())
	}
}

// TestPrepareSocket: a socket outside the home needs a directory only its user can write;
// a stale socket is removed, anything else at the path is refused and left alone.
func TestPrepareSocket(t *testing.T) {
	h := newTestHome(t)
	run := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(run, 0o750); err != nil {
		t.Fatal(err)
	}
	h.SocketPath = filepath.Join(run, "node.sock")
	if err := h.PrepareSocket(); err != nil {
		t.Fatalf("PrepareSocket with nothing there = %v", err)
	}
	ln, err := net.Listen("unix", h.Socket())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := h.PrepareSocket(); err != nil {
		t.Fatalf("PrepareSocket with a stale socket = %v", err)
	}
	if _, err := os.Lstat(h.Socket()); !os.IsNotExist(err) {
		t.Errorf("the stale socket is still there: %v", err)
	}

	if err := os.WriteFile(h.Socket(), []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.PrepareSocket(); !errors.Is(err, vault.ErrFileType) {
		t.Errorf("PrepareSocket with a regular file there = %v, want %v", err, vault.ErrFileType)
	}
	if b, _ := os.ReadFile(h.Socket()); string(b) != "precious" {
		t.Errorf("the file at the socket's path = %q, want it untouched", b)
	}
	os.Remove(h.Socket())

	if err := os.Chmod(run, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := h.PrepareSocket(); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("PrepareSocket in a directory others can write = %v, want a refusal", err)
	}
	h.SocketPath = filepath.Join(run, "missing", "node.sock")
	if err := h.PrepareSocket(); err == nil {
		t.Error("PrepareSocket in a missing directory = nil, want an error")
	}
}
