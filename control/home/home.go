package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/adjacentnet/adjacent/control/vault"
)

// EnvVar names the environment variable that selects a home when --home is not given.
const EnvVar = "ADJACENT_HOME"

// SystemDir is the home of the system service.
const SystemDir = "/var/lib/adjacent"

// Home is a node's home directory.
type Home struct {
	Dir string // absolute
	// SocketPath is where the node's API socket lives when not in Dir (the system service
	// keeps it under /run/adjacent); empty means node.sock in Dir. See WithSocket.
	SocketPath string
}

// Resolve picks the home: flag if set, else $ADJACENT_HOME, else ~/.adjacent.
func Resolve(flag string) (Home, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv(EnvVar)
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return Home{}, fmt.Errorf("home: no --home given, %s unset, and no user home directory: %w", EnvVar, err)
		}
		dir = filepath.Join(h, ".adjacent")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Home{}, fmt.Errorf("home: %s: %w", dir, err)
	}
	return Home{Dir: abs}, nil
}

// Paths inside a home.
func (h Home) Vault() string  { return filepath.Join(h.Dir, "vault") }
func (h Home) State() string  { return filepath.Join(h.Dir, "state.db") }
func (h Home) Socket() string { return h.socket() }
func (h Home) Lock() string   { return filepath.Join(h.Dir, "node.lock") }
func (h Home) Pid() string    { return filepath.Join(h.Dir, "node.pid") }
func (h Home) Log() string    { return filepath.Join(h.Dir, "node.log") }

// Authority is the hub's member store when it is kept in SQLite.
func (h Home) Authority() string { return filepath.Join(h.Dir, "authority.db") }

// Exists reports whether the home directory exists.
func (h Home) Exists() bool {
	fi, err := os.Stat(h.Dir)
	return err == nil && fi.IsDir()
}

// Ensure creates the home with mode 0700 if it does not exist, and refuses a home that group
// or others may access, or that is not a directory.
func (h Home) Ensure() error {
	err := os.Mkdir(h.Dir, 0o700)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("home: create %s: %w", h.Dir, err)
	}
	return h.Check()
}

// Check refuses a home that group or others may access, and one where a symbolic link (or
// a file of the wrong type) sits at a path the node writes.
func (h Home) Check() error {
	if err := vault.CheckPrivate(h.Dir, true); err != nil {
		return fmt.Errorf("home: %w", err)
	}
	return h.checkFiles()
}
