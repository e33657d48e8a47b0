package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tools are the programs the comparison runs: adjacent and blast built from this module,
// and the peers found on the machine. A peer that is missing is "" with the reason in why.
type tools struct {
	root            string // the module's directory
	adjacent, blast string
	adjacentErr     error // why adjacent could not be built, if it could not

	path map[string]string // tool name -> absolute path, or "" when missing
	why  map[string]string // tool name -> how to get it, when missing
}

// Peer tools by name, with the Debian package (or command) that brings each.
var peerTools = []struct{ name, candidates, install string }{
	{"iperf3", "iperf3", "Debian package iperf3"},
	{"sshd", "/usr/sbin/sshd", "Debian package openssh-server"},
	{"ssh", "ssh", "Debian package openssh-client"},
	{"ssh-keygen", "ssh-keygen", "Debian package openssh-client"},
	{"stunnel", "stunnel4 stunnel", "Debian package stunnel4"},
	{"socat", "socat", "Debian package socat"},
	{"wg", "wg", "Debian package wireguard-tools"},
	{"wireguard-go", "", "GOBIN=bin/peers go install golang.zx2c4.com/wireguard@latest"},
	{"nebula", "nebula", "Debian package nebula"},
	{"nebula-cert", "nebula-cert", "Debian package nebula"},
	{"perf", "perf", "Debian package linux-perf"}, // counts the portal's system calls
}

// findTools builds adjacent and blast into bin/ of the module and looks up the peers.
func findTools(ctx context.Context, root, wireguard, adjacent string) (*tools, error) {
	t := &tools{root: root, path: map[string]string{}, why: map[string]string{}}
	gobin := goCommand()
	build := func(pkg, name string) (string, error) {
		out := filepath.Join(root, "bin", name)
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", pkg, err, firstLine(string(b)))
		}
		return out, nil
	}
	var err error
	if t.blast, err = build("./internal/cmd/blast", "blast"); err != nil {
		return nil, err // every mode needs blast
	}
	if adjacent != "" { // another build, e.g. an older commit's, measured by this harness
		t.adjacent, t.adjacentErr = filepath.Abs(adjacent)
	} else {
		t.adjacent, t.adjacentErr = build("./cmd/adjacent", "adjacent")
	}
	for _, p := range peerTools {
		cands := strings.Fields(p.candidates)
		if p.name == "wireguard-go" {
			cands = []string{wireguard}
		}
		for _, c := range cands {
			if path, err := exec.LookPath(c); err == nil {
				t.path[p.name], _ = filepath.Abs(path)
				break
			}
		}
		if t.path[p.name] == "" {
			t.why[p.name] = fmt.Sprintf("%s not found (%s)", p.name, p.install)
		}
	}
	return t, nil
}

// missing says why a mode needing names cannot run, or "" when it can.
func (t *tools) missing(names []string) string {
	var why []string
	for _, n := range names {
		if n == "adjacent" {
			if t.adjacentErr != nil {
				why = append(why, "adjacent did not build: "+t.adjacentErr.Error())
			}
			continue
		}
		if t.path[n] == "" {
			why = append(why, t.why[n])
		}
	}
	return strings.Join(why, "; ")
}

// versions are one line per tool, for the report.
func (t *tools) versions(ctx context.Context) []string {
	var vs []string
	add := func(label string, f func() string) {
		if v := strings.TrimSpace(f()); v != "" {
			vs = append(vs, label+": "+v)
		}
	}
	output := func(name string, args ...string) string {
		if name == "" {
			return ""
		}
		b, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return string(b)
	}
	if t.adjacentErr == nil {
		add("adjacent", func() string { return t.adjacentVersion(ctx) })
	}
	add("OpenSSH", func() string { return firstLine(output(t.path["ssh"], "-V")) })
	add("stunnel", func() string {
		for _, l := range strings.Split(output(t.path["stunnel"], "-version"), "\n") {
			if strings.HasPrefix(l, "stunnel ") {
				return l
			}
		}
		return ""
	})
	add("iperf3", func() string { return firstLine(output(t.path["iperf3"], "--version")) })
	add("wireguard-go", func() string {
		v := firstLine(output(t.path["wireguard-go"], "--version"))
		if mod := buildInfo(ctx, t.path["wireguard-go"]); mod != "" {
			v += " (" + mod + ")"
		}
		return v
	})
	add("Nebula", func() string {
		v := strings.TrimPrefix(firstLine(output(t.path["nebula"], "-version")), "Version: ")
		if v != "" && t.path["nebula"] == "/usr/bin/nebula" {
			if deb, err := runCmd(ctx, "dpkg-query", "-W", "-f", "${Version}", "nebula"); err == nil && deb != "" {
				v += " (Debian package " + deb + ")"
			}
		}
		return v
	})
	add("socat", func() string {
		for _, l := range strings.Split(output(t.path["socat"], "-V"), "\n") {
			if strings.HasPrefix(l, "socat version") {
				return l
			}
		}
		return ""
	})
	add("Go", func() string { return firstLine(output(goCommand(), "version")) })
	return vs
}

// adjacentVersion is the commit the adjacent binary was built from, and whether the work
// tree differed from it (read-only git commands; the stamp when go build has one).
func (t *tools) adjacentVersion(ctx context.Context) string {
	if v := buildInfo(ctx, t.adjacent); strings.Contains(v, " at ") {
		return v
	}
	rev, err := runCmd(ctx, "git", "-C", t.root, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "github.com/adjacentnet/adjacent (commit unknown)"
	}
	v := "github.com/adjacentnet/adjacent at " + rev
	if st, err := runCmd(ctx, "git", "-C", t.root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		v += " with uncommitted changes"
	}
	return v
}

// buildInfo is the main module's version of a Go binary, with its VCS revision if stamped.
func buildInfo(ctx context.Context, bin string) string {
	if bin == "" {
		return ""
	}
	b, err := exec.CommandContext(ctx, goCommand(), "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	var mod, rev, modified string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			mod = f[1] + " " + f[2]
		case len(f) >= 2 && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case len(f) >= 2 && f[1] == "vcs.modified=true":
			modified = " with uncommitted changes"
		}
	}
	if rev != "" {
		return mod + " at " + rev + modified
	}
	return mod
}

// goCommand is the go command: on PATH, else the one at /usr/local/go.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// moduleRoot is the directory of this module's go.mod, found from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/adjacentnet/adjacent\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the adjacent module (the directory of its go.mod)")
		}
		dir = parent
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
