package home

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/adjacentnet/adjacent/control/vault"
)

// entries are what a node keeps in its home, with the type each must be. Nothing a user
// names becomes a path here: identity names become vault key names, which the vault checks,
// and every other name (projects, inlets, outlets, relays, policies) is only a key in the
// state database.
var entries = []struct {
	name string
	typ  fs.FileMode // fs.ModeDir, fs.ModeSocket, or 0 for a regular file
}{
	{"vault", fs.ModeDir},
	{"state.db", 0}, {"state.db-wal", 0}, {"state.db-shm", 0}, {"state.db-journal", 0},
	{"authority.db", 0}, {"authority.db-wal", 0}, {"authority.db-shm", 0}, {"authority.db-journal", 0},
	{"node.sock", fs.ModeSocket},
	{"node.lock", 0},
	{"node.pid", 0},
	{"node.log", 0}, {"node.log.1", 0}, {"node.log.2", 0}, {"node.log.3", 0}, // rotated: internal/logfile
}

// Files returns the paths of everything a node may keep in its home: what node delete
// removes (and nothing else, so a mistyped --home cannot wipe an unrelated directory).
func (h Home) Files() []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = filepath.Join(h.Dir, e.name)
	}
	return out
}

// checkFiles refuses a symbolic link, or a file of the wrong type, at any path the node
// writes. A link there would make the node write wherever it points, outside the home;
// SQLite in particular follows links at the database and at its -wal, -shm and -journal
// companions and offers no way to stop it, so they are refused before it opens them. Missing
// files are fine.
func (h Home) checkFiles() error {
	for _, e := range entries {
		path := filepath.Join(h.Dir, e.name)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("home: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return linkError(path)
		}
		if fi.Mode().Type() != e.typ {
			return fmt.Errorf("home: %s is a %s, not the %s the node keeps there: %w; move it out of the home", path, typeName(fi.Mode().Type()), typeName(e.typ), vault.ErrFileType)
		}
	}
	return nil
}

func linkError(path string) error {
	return fmt.Errorf("home: %s %w; the node never writes through links in its home, which could lead outside it: remove the link", path, vault.ErrSymlink)
}

func typeName(t fs.FileMode) string {
	switch t {
	case 0:
		return "regular file"
	case fs.ModeDir:
		return "directory"
	case fs.ModeSocket:
		return "socket"
	case fs.ModeNamedPipe:
		return "named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "device"
	}
	return "special file"
}

// OpenFile opens the file at path in the home as os.OpenFile does, creating it with mode
// 0600, but never through a symbolic link: a link at path is refused with an error that says
// so, and so is anything but a regular file (a named pipe would block the opener).
func OpenFile(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|oNoFollow, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, linkError(path)
		}
		return nil, fmt.Errorf("home: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is a %s, not a regular file: %w", path, typeName(fi.Mode().Type()), vault.ErrFileType)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("home: %w", err)
	}
	return f, nil
}

// WriteFile replaces the contents of the file at path in the home (mode 0600 if new), never
// through a symbolic link.
func WriteFile(path string, data []byte) error {
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("home: write %s: %w", path, err)
	}
	return nil
}
