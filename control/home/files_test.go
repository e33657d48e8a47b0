package home

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/control/vault"
)

func newTestHome(t *testing.T) Home {
	t.Helper()
	h := Home{Dir: filepath.Join(t.TempDir(), "home")}
	if err := h.Ensure(); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCheckRefusesLinks: a link at any file the node writes, dangling or not, makes Check
// fail with an error naming it; a file of the wrong type too; missing files are fine.
func TestCheckRefusesLinks(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	for _, path := range (Home{Dir: "/h"}).Files() {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			h := newTestHome(t)
			if err := os.Symlink(target, filepath.Join(h.Dir, name)); err != nil {
				t.Fatal(err)
			}
			err := h.Check()
			if !errors.Is(err, vault.ErrSymlink) || !strings.Contains(err.Error(), filepath.Join(h.Dir, name)) {
				t.Fatalf("Check() with a link at %s = %v, want %v naming it", name, err, vault.ErrSymlink)
			}
		})
	}
	h := newTestHome(t)
	if err := h.Check(); err != nil {
		t.Fatalf("Check() of an empty home = %v", err)
	}
	if err := os.Mkdir(h.Pid(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(); !errors.Is(err, vault.ErrFileType) {
		t.Fatalf("Check() with a directory at node.pid = %v, want %v", err, vault.ErrFileType)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("link target: %v, want it never created", err)
	}
}

// TestWriteFileNeverFollows: writing a file of the home through a link, to an existing file
// or a missing one, is refused and changes nothing; a plain file is written 0600.
func TestWriteFileNeverFollows(t *testing.T) {
	h := newTestHome(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{victim, filepath.Join(outside, "new")} {
		if err := os.Symlink(to, h.Pid()); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(h.Pid(), []byte("1\n")); !errors.Is(err, vault.ErrSymlink) {
			t.Errorf("WriteFile through a link to %s = %v, want %v", to, err, vault.ErrSymlink)
		}
		if f, err := OpenFile(h.Pid(), os.O_RDWR|os.O_CREATE); !errors.Is(err, vault.ErrSymlink) {
			f.Close()
			t.Errorf("OpenFile through a link to %s = %v, want %v", to, err, vault.ErrSymlink)
		}
		os.Remove(h.Pid())
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("victim = %q, %v; want it untouched", b, err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "new")); !os.IsNotExist(err) {
		t.Errorf("a file was created outside the home: %v", err)
	}
	if err := WriteFile(h.Pid(), []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(h.Pid()); err != nil || fi.Mode() != 0o600 {
		t.Errorf("node.pid mode = %v, %v; want 0600", fi.Mode(), err)
	}
}
