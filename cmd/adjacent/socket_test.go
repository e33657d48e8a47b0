package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSocketOutsideHome: with --socket (or $ADJACENT_SOCKET) the node started in the
// background serves its API there and not in the home, and the CLI finds it there.
func TestSocketOutsideHome(t *testing.T) {
	h := newHome(t)
	run := t.TempDir()
	sock := filepath.Join(run, "node.sock")
	t.Cleanup(func() { cli(t, "--home", h, "--socket", sock, "node", "stop") })
	mustCLI(t, "--home", h, "--socket", sock, "node", "create")
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want a socket, mode 0600", sock, fi, err)
	}
	if _, err := os.Lstat(filepath.Join(h, "node.sock")); !os.IsNotExist(err) {
		t.Errorf("a socket in the home too: %v", err)
	}
	t.Setenv("ADJACENT_SOCKET", sock)
	mustCLI(t, "--home", h, "node", "show")
	t.Setenv("ADJACENT_SOCKET", "")
	if _, errOut, code := cli(t, "--home", h, "node", "show"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("node show without the socket's place: exit %d, %q; want not running", code, errOut)
	}
	mustCLI(t, "--home", h, "--socket", sock, "node", "stop")
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after node stop: %v", err)
	}
}
