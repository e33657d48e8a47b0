package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/adjacentnet/adjacent/control/vault"
)

// SocketEnvVar names the environment variable that places the API socket when --socket is
// not given.
const SocketEnvVar = "ADJACENT_SOCKET"

func (h Home) socket() string {
	if h.SocketPath != "" {
		return h.SocketPath
	}
	return filepath.Join(h.Dir, "node.sock")
}

// WithSocket returns h with its API socket at flag if set, else at $ADJACENT_SOCKET if set,
// else where it always is, node.sock in the home.
func (h Home) WithSocket(flag string) (Home, error) {
	path := flag
	if path == "" {
		path = os.Getenv(SocketEnvVar)
	}
	if path == "" {
		return h, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Home{}, fmt.Errorf("home: socket %s: %w", path, err)
	}
	h.SocketPath = abs
	return h, nil
}

// PrepareSocket readies the socket's path for a node that holds the home's lock: it removes
// a stale socket left by a crashed node, and nothing but a socket. A socket outside the home
// must sit in a directory that belongs to the node's user (or root) and that no one else may
// write to, or another user could replace the socket with their own.
func (h Home) PrepareSocket() error {
	path := h.Socket()
	if dir := filepath.Dir(path); filepath.Clean(dir) != filepath.Clean(h.Dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("home: API socket directory: %w; create it, owned by this user and mode 0700 or 0750", err)
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.IsDir():
			return fmt.Errorf("home: API socket directory %s is not a directory", dir)
		case fi.Mode().Perm()&0o022 != 0:
			return fmt.Errorf("home: API socket directory %s is writable by group or others (mode %04o); fix with: chmod go-w %s", dir, fi.Mode().Perm(), dir)
		case st != nil && st.Uid != uint32(os.Getuid()) && st.Uid != 0:
			return fmt.Errorf("home: API socket directory %s belongs to uid %d, not to this node's user (uid %d)", dir, st.Uid, os.Getuid())
		}
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("home: API socket: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return linkError(path)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("home: %s is a %s, not a stale API socket: %w; move it away or choose another --socket", path, typeName(fi.Mode().Type()), vault.ErrFileType)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("home: remove stale socket: %w", err)
	}
	return nil
}
