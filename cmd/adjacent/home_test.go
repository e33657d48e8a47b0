package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// snapshot records every entry under dir (not following links) with its type, mode, size
// and, for regular files, a hash of the contents; skip is left out.
func snapshot(t *testing.T, dir, skip string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fmt.Sprintf("%v %d", fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[path] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(before, after map[string]string) []string {
	var out []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			out = append(out, "created "+p)
		} else if v != w {
			out = append(out, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "removed "+p)
		}
	}
	slices.Sort(out)
	return out
}

// TestNothingOutsideHome: names a user gives that look like paths (../x, absolute ones)
// are refused or stay names in the state database; a symbolic link at any file the node
// writes, to a file outside the home or to a missing one, makes the node refuse to start with
// one line naming the link; keys are 0600, and a group-readable key also stops the node.
// Through all of it nothing outside the home is created or changed: not next to the home, not
// in a directory the links point into, not in the working directory.
func TestNothingOutsideHome(t *testing.T) {
	h := newHome(t)
	parent := filepath.Dir(h)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	watch := func() map[string]string {
		s := snapshot(t, outside, "")
		maps.Copy(s, snapshot(t, parent, h))
		es, _ := os.ReadDir(cwd) // the working directory, for names taken as relative paths
		for _, e := range es {
			s[filepath.Join(cwd, e.Name())] = e.Type().String()
		}
		return s
	}
	before := watch()
	check := func(when string) {
		t.Helper()
		if d := diff(before, watch()); len(d) > 0 {
			t.Fatalf("%s: outside the home: %s", when, strings.Join(d, "; "))
		}
	}
	refused := func(want string, args ...string) {
		t.Helper()
		_, errOut, code := cli(t, append([]string{"--home", h}, args...)...)
		if code == 0 || !strings.Contains(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("adjacent %s: exit %d, stderr %q; want one line containing %q", strings.Join(args, " "), code, errOut, want)
		}
		if code == 0 && args[0] == "node" {
			cli(t, "--home", h, "node", "stop") // started after all: stop it for the next case
		}
	}

	mustCLI(t, "--home", h, "node", "create")
	for _, name := range []string{"../x", "../../x", "a/../../x", filepath.Join(outside, "abs")} {
		refused("identity name", "identity", "create", name)
		refused("tcp-outlet create: name", "tcp-outlet", "create", "--to", "127.0.0.1:1", "--from", name)
		refused("project create: name", "project", "create", name, "--listen", "127.0.0.1:0")
		refused("", "relay", "create", name)
		// A policy's resource is only a key in the database, whatever it looks like.
		cli(t, "--home", h, "policy", "create", "--resource", name, "--allow", `(= subject.role "x")`)
	}
	// "." and ".." are odd names but only names: an identity's key is "identity-." in the
	// vault, an outlet's a worker address.
	for _, name := range []string{".", ".."} {
		cli(t, "--home", h, "identity", "create", name)
		cli(t, "--home", h, "tcp-outlet", "create", "--to", "127.0.0.1:1", "--from", name)
	}
	check("after names like paths")

	// Keys: 0600 in a 0700 vault.
	vaultDir := filepath.Join(h, "vault")
	keys, err := os.ReadDir(vaultDir)
	if err != nil || len(keys) == 0 {
		t.Fatalf("vault: %v, %d keys", err, len(keys))
	}
	for _, k := range keys {
		if fi, err := k.Info(); err != nil || fi.Mode() != 0o600 {
			t.Errorf("key %s: mode %v, %v; want 0600", k.Name(), fi.Mode(), err)
		}
	}
	mustCLI(t, "--home", h, "node", "stop")

	// A link at each file the node writes, to a file outside and to a missing one there.
	files := []string{"node.pid", "node.log", "node.lock", "node.sock", "state.db", "state.db-wal", "state.db-shm", "state.db-journal", "authority.db", "authority.db-wal", "vault", "vault/identity-evil"}
	for _, f := range files {
		path := filepath.Join(h, f)
		aside := path + ".aside"
		if err := os.Rename(path, aside); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, to := range []string{victim, filepath.Join(outside, "new-"+filepath.Base(f)), outside} {
			if err := os.Symlink(to, path); err != nil {
				t.Fatal(err)
			}
			refused("symbolic link", "node", "create")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Rename(aside, path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		check("after a link at " + f)
	}

	// A key open to the group stops the node; made private again, the home works.
	key := filepath.Join(vaultDir, "identity-default")
	os.Chmod(key, 0o640)
	refused("chmod 600", "node", "create")
	os.Chmod(key, 0o600)
	mustCLI(t, "--home", h, "node", "create")
	mustCLI(t, "--home", h, "node", "stop")
	check("at the end")
}
