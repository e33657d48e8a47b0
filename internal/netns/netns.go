package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Check reports why namespaces cannot be built here, or nil when they can: they need root
// and the ip command.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("no ip command (Debian package iproute2)")
	}
	return nil
}

// Namespace is a network namespace this process made. Close removes it.
type Namespace struct {
	// Name is the namespace's name, as ip netns knows it.
	Name string

	closeOnce sync.Once
	closeErr  error
}

// Create makes a namespace whose name starts with prefix and ends with a random suffix, with
// its loopback up. The caller must Close it, also on failure.
func Create(prefix string) (*Namespace, error) {
	var b [3]byte
	rand.Read(b[:])
	ns := &Namespace{Name: prefix + "-" + hex.EncodeToString(b[:])}
	if _, err := run(context.Background(), "ip", "netns", "add", ns.Name); err != nil {
		return nil, fmt.Errorf("netns: create %s: %w", ns.Name, err)
	}
	if _, err := ns.Exec(context.Background(), "ip", "link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, fmt.Errorf("netns: create %s: %w", ns.Name, err)
	}
	return ns, nil
}

// Close kills every process still running in the namespace and removes it, with the veth
// ends inside it. It is idempotent.
func (ns *Namespace) Close() error {
	ns.closeOnce.Do(func() {
		out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
		for _, pid := range strings.Fields(string(out)) {
			exec.Command("kill", "-9", pid).Run()
		}
		if _, err := run(context.Background(), "ip", "netns", "del", ns.Name); err != nil {
			ns.closeErr = fmt.Errorf("netns: remove %s: %w", ns.Name, err)
		}
	})
	return ns.closeErr
}

// Exec runs a command in the namespace and returns its standard output. Its error carries
// the command line and what the command printed on standard error.
func (ns *Namespace) Exec(ctx context.Context, args ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// Command returns a command that runs in the namespace.
func (ns *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// CommandContext is Command with a context that kills the command when it is done.
func (ns *Namespace) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// String returns the namespace's name.
func (ns *Namespace) String() string { return ns.Name }

// Connect joins a and b with a veth pair, addressing a's end with addrA and b's with addrB
// (CIDR, e.g. 10.0.1.1/24), both up. The pair goes away with either namespace.
func Connect(a *Namespace, addrA string, b *Namespace, addrB string) error {
	var r [3]byte
	rand.Read(r[:])
	ea, eb := "va"+hex.EncodeToString(r[:]), "vb"+hex.EncodeToString(r[:])
	ctx := context.Background()
	if _, err := run(ctx, "ip", "link", "add", ea, "netns", a.Name, "type", "veth", "peer", "name", eb, "netns", b.Name); err != nil {
		return fmt.Errorf("netns: link %s and %s: %w", a, b, err)
	}
	for _, step := range []struct {
		ns   *Namespace
		args []string
	}{
		{a, []string{"ip", "addr", "add", addrA, "dev", ea}},
		{a, []string{"ip", "link", "set", ea, "up"}},
		{b, []string{"ip", "addr", "add", addrB, "dev", eb}},
		{b, []string{"ip", "link", "set", eb, "up"}},
	} {
		if _, err := step.ns.Exec(ctx, step.args...); err != nil {
			return fmt.Errorf("netns: link %s and %s: %w", a, b, err)
		}
	}
	return nil
}

func run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	// A daemon the command leaves behind may hold its output open; do not wait for it.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return stdout.String(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
