//go:build !linux

package rstguard

// Guard is not supported on this platform.
type Guard struct{}

// Install returns ErrNotSupported.
func Install(Config) (*Guard, error) { return nil, ErrNotSupported }

// Counters returns ErrNotSupported.
func (*Guard) Counters() (Counters, error) { return Counters{}, ErrNotSupported }

// Close does nothing.
func (*Guard) Close() error { return nil }
