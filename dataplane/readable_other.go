//go:build !linux

package dataplane

// readiness is Linux-only; elsewhere a session holds its read buffer while it waits.
type readiness struct{}

func newReadiness(any) *readiness { return nil }

func (r *readiness) wait() error { return nil }
