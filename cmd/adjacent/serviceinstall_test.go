package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/adjacentnet/adjacent/dist"
)

// TestServiceInstall: into a staged root (systemd is not PID 1 here, and nothing is written
// outside the test's directory) install creates the user and group, the state and config
// directories with their owners and modes, the config, the binary and the unit, and says
// what it would have started; uninstall removes the unit and keeps the state, --purge
// removes state, config and user.
func TestServiceInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the directories to the service's user")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, filepath.Join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n")
	writeConfig(t, filepath.Join(root, "etc/group"), "root:x:0:\n")
	writeConfig(t, filepath.Join(root, serviceHosts), "127.0.0.1\tlocalhost\n")
	if err := os.Chmod(filepath.Join(root, serviceHosts), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "adjacent.yaml")

	// A file that does not pass config check is refused before anything is written.
	writeConfig(t, conf, "relays: [a b]\n")
	if _, errOut, code := cli(t, "service", "install", "--root", root, "--config", conf); code == 0 || !strings.Contains(errOut, conf+":1: relay \"a b\"") {
		t.Fatalf("install with an invalid config: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, serviceUnit)); err == nil {
		t.Fatal("install wrote the unit though the config was refused")
	}

	writeConfig(t, conf, "api_socket:\n  group: adjacent\nlog_level: debug\n")
	out := mustCLI(t, "service", "install", "--root", root, "--config", conf)
	for _, want := range []string{"Would run: systemctl daemon-reload", "Would run: systemctl enable --now adjacent.service", "User and group adjacent: uid "} {
		if !strings.Contains(out, want) {
			t.Errorf("install said %q, want %q", out, want)
		}
	}
	uid, gid, err := lookupUser(root, serviceUser)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(filepath.Join(root, "etc/group")), "\nadjacent:x:"+itoa(gid)+":") {
		t.Errorf("no group adjacent in the staged /etc/group:\n%s", readFile(filepath.Join(root, "etc/group")))
	}
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
		data     string
	}{
		{serviceHome, 0o700 | os.ModeDir, uid, gid, ""},
		{serviceConfDir, 0o750 | os.ModeDir, 0, gid, ""},
		{serviceConfDir + "/adjacent.yaml", 0o640, 0, gid, "api_socket:\n  group: adjacent\nlog_level: debug\n"},
		{serviceUnit, 0o644, 0, 0, dist.Unit},
		{serviceSysuser, 0o644, 0, 0, dist.Sysusers},
		{serviceBinary, 0o755, 0, 0, ""},
		// The hosts file, for the names of transparent inlets: the group may write it.
		{serviceHosts, 0o664, 0, gid, "127.0.0.1\tlocalhost\n"},
	} {
		fi, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Errorf("install: %v", err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || int(st.Uid) != c.uid || int(st.Gid) != c.gid {
			t.Errorf("%s: mode %v, owner %d:%d; want %v, %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
		if c.data != "" && readFile(filepath.Join(root, c.path)) != c.data {
			t.Errorf("%s holds %q, want %q", c.path, readFile(filepath.Join(root, c.path)), c.data)
		}
	}

	// --home puts the state elsewhere, in the unit too.
	other := t.TempDir()
	mustCLI(t, "--home", "/srv/adjacent", "service", "install", "--root", other)
	unit := readFile(filepath.Join(other, serviceUnit))
	if !strings.Contains(unit, "--home /srv/adjacent ") || !strings.Contains(unit, "\nReadWritePaths=/srv/adjacent\n") {
		t.Errorf("install --home /srv/adjacent wrote the unit:\n%s", unit)
	}
	if got := readFile(filepath.Join(other, serviceConfDir, "adjacent.yaml")); got != defaultServiceConfig {
		t.Errorf("install without --config wrote %q", got)
	}
	if _, errOut, code := cli(t, "config", "check", filepath.Join(other, serviceConfDir, "adjacent.yaml")); code != 0 {
		t.Errorf("the default config does not pass config check: %s", errOut)
	}

	// Uninstall keeps the state and the config; --purge does not.
	writeConfig(t, filepath.Join(root, serviceHome, "vault.db"), "keys")
	out = mustCLI(t, "service", "uninstall", "--root", root)
	if !strings.Contains(out, "Would run: systemctl disable --now adjacent.service") || !strings.Contains(out, "Kept the state") {
		t.Errorf("uninstall said %q", out)
	}
	for _, p := range []string{serviceUnit, serviceSysuser} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("uninstall left %s: %v", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, serviceHosts)); err != nil || fi.Mode().Perm() != 0o644 || fi.Sys().(*syscall.Stat_t).Gid != 0 {
		t.Errorf("after uninstall the hosts file is %v (%v), want root's group and mode 0644 again", fi.Mode(), err)
	}
	for _, p := range []string{serviceHome + "/vault.db", serviceConfDir + "/adjacent.yaml"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("uninstall without --purge removed %s: %v", p, err)
		}
	}
	if _, _, err := lookupUser(root, serviceUser); err != nil {
		t.Errorf("uninstall without --purge removed the user: %v", err)
	}
	mustCLI(t, "service", "uninstall", "--root", root, "--purge")
	for _, p := range []string{serviceHome, serviceConfDir} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("uninstall --purge left %s: %v", p, err)
		}
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"} {
		if strings.Contains(readFile(filepath.Join(root, f)), "adjacent:") {
			t.Errorf("uninstall --purge left the user in %s", f)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
