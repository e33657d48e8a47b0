package netns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NS is a network namespace made for a test.
type NS struct {
	Name string
	t    testing.TB
}

// Require skips the test unless it runs as root with the ip command.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (Debian package iproute2)")
	}
}

// New makes a namespace whose name starts with prefix, with its loopback up. It and
// everything running in it are removed when the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	ns := &NS{Name: prefix + "-" + hex.EncodeToString(b[:]), t: t}
	run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(ns.remove)
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

func (ns *NS) remove() {
	// Kill what still runs inside, then the namespace.
	out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
	for _, pid := range strings.Fields(string(out)) {
		exec.Command("kill", "-9", pid).Run()
	}
	exec.Command("ip", "netns", "del", ns.Name).Run()
}

// Run runs a command in the namespace and fails the test if it fails.
func (ns *NS) Run(args ...string) string {
	ns.t.Helper()
	return run(ns.t, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Command returns a command that runs in the namespace.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Link joins a and b with a veth pair, addressing a's end with addrA and b's with addrB
// (CIDR, e.g. 10.0.1.1/24).
func Link(t testing.TB, a *NS, addrA string, b *NS, addrB string) {
	t.Helper()
	var r [3]byte
	rand.Read(r[:])
	ea, eb := "va"+hex.EncodeToString(r[:]), "vb"+hex.EncodeToString(r[:])
	run(t, "ip", "link", "add", ea, "netns", a.Name, "type", "veth", "peer", "name", eb, "netns", b.Name)
	a.Run("ip", "addr", "add", addrA, "dev", ea)
	a.Run("ip", "link", "set", ea, "up")
	b.Run("ip", "addr", "add", addrB, "dev", eb)
	b.Run("ip", "link", "set", eb, "up")
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// String returns the namespace's name.
func (ns *NS) String() string { return fmt.Sprint(ns.Name) }
