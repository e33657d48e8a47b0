//go:build !(linux && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le))

package rstguard

// Guard is not supported on this platform.
type Guard struct{}

// Install returns ErrNotSupported.
func Install(Config) (*Guard, error) { return nil, ErrNotSupported }

// Counters returns ErrNotSupported.
func (*Guard) Counters() (Counters, error) { return Counters{}, ErrNotSupported }

// Close does nothing.
func (*Guard) Close() error { return nil }
