package dist

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// systemdAnalyze returns the path of systemd-analyze or skips the test.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze here (Debian package systemd); the unit is not checked")
	}
	return path
}

// TestUnitVerify: `systemd-analyze verify` accepts the unit without a word of complaint (it
// exits 0 on unknown keys and bad values, which it only prints). It runs on a staged root
// that holds the unit, an executable at the ExecStart= path and sysinit.target, which every
// service requires by default; systemd need not run here.
func TestUnitVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	root := t.TempDir()
	exe := ExecStart()
	if len(exe) == 0 || !filepath.IsAbs(exe[0]) {
		t.Fatalf("ExecStart() = %q, want an absolute binary path first", exe)
	}
	for _, f := range []struct {
		path, data string
		mode       os.FileMode
	}{
		{"etc/systemd/system/" + UnitName, Unit, 0o644},
		{exe[0][1:], "#!/bin/sh\n", 0o755},
		{"bin/kill", "#!/bin/sh\n", 0o755}, // ExecReload=
		{"usr/lib/systemd/system/sysinit.target", "[Unit]\nDescription=stub\n", 0o644},
	} {
		path := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--root="+root, UnitName).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", UnitName, err, out)
	}
}

// TestUnitSecurity: `systemd-analyze security --offline=true` rates the unit at most 2.5 ("OK"
// spans 1.0 to 4.9; 2.5 is our bar), and a copy without the capability bounding set and the
// system call filter fails that bar, so the check can fail.
func TestUnitSecurity(t *testing.T) {
	analyze := systemdAnalyze(t)
	check := func(unit string) (string, error) {
		path := filepath.Join(t.TempDir(), UnitName)
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=25", "--no-pager", path).CombinedOutput()
		m := regexp.MustCompile(`Overall exposure level for \S+: (\S+ \S+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security printed no exposure level (%v):\n%s", err, out)
		}
		return string(m[1]), err
	}
	level, err := check(Unit)
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure %s, want at most 2.5: %v", level, err)
	}
	t.Logf("exposure %s", level)

	var weak []string
	for _, line := range strings.Split(Unit, "\n") {
		if !strings.HasPrefix(line, "CapabilityBoundingSet=") && !strings.HasPrefix(line, "SystemCallFilter=") {
			weak = append(weak, line)
		}
	}
	level, err = check(strings.Join(weak, "\n"))
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("a unit without CapabilityBoundingSet= and SystemCallFilter= passed the bar (exposure %s, %v)", level, err)
	}
	t.Logf("without CapabilityBoundingSet= and SystemCallFilter=: exposure %s, refused", level)
}

// TestUnitRunsService: the unit runs the node in the foreground on the service's home and
// socket, as the dedicated user with only the capabilities the node uses.
func TestUnitRunsService(t *testing.T) {
	for _, want := range []string{
		"ExecStart=/usr/bin/adjacent node run --home /var/lib/adjacent --socket /run/adjacent/node.sock --config /etc/adjacent/adjacent.yaml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Type=notify", "User=adjacent", "Group=adjacent", "NoNewPrivileges=yes", "Restart=on-failure",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
		"StateDirectory=adjacent", "StateDirectoryMode=0700", "RuntimeDirectory=adjacent",
		"ReadWritePaths=-/etc/hosts",
	} {
		if !strings.Contains(Unit, "\n"+want+"\n") {
			t.Errorf("the unit has no line %q", want)
		}
	}
	if !strings.HasPrefix(Sysusers, "#") || !strings.Contains(Sysusers, "\nu adjacent ") {
		t.Errorf("sysusers.d entry = %q, want a u line for adjacent", Sysusers)
	}
}
