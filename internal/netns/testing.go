package netns

import (
	"context"
	"testing"
)

// NS is a namespace made for a test by New: the same Namespace, whose Run fails the test.
type NS struct {
	*Namespace
	t testing.TB
}

// Require skips the test unless namespaces can be built here (root and the ip command).
func Require(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skip(err)
	}
}

// New makes a namespace whose name starts with prefix, with its loopback up. It and
// everything running in it are removed when the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	ns, err := Create(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return &NS{Namespace: ns, t: t}
}

// Run runs a command in the namespace, returns its output, and fails the test if it fails.
func (ns *NS) Run(args ...string) string {
	ns.t.Helper()
	out, err := ns.Exec(context.Background(), args...) // also from cleanups, after t.Context ends
	if err != nil {
		ns.t.Fatal(err)
	}
	return out
}

// Link joins a and b with a veth pair, addressing a's end with addrA and b's with addrB
// (CIDR, e.g. 10.0.1.1/24); it fails the test on error.
func Link(t testing.TB, a *NS, addrA string, b *NS, addrB string) {
	t.Helper()
	if err := Connect(a.Namespace, addrA, b.Namespace, addrB); err != nil {
		t.Fatal(err)
	}
}
