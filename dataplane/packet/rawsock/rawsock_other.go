//go:build !linux

package rawsock

import (
	"time"

	"golang.org/x/net/bpf"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// InjectorConfig configures an Injector.
type InjectorConfig struct {
	Mark uint32
}

// Injector is not supported on this platform.
type Injector struct{}

// NewInjector returns ErrNotSupported.
func NewInjector(InjectorConfig) (*Injector, error) { return nil, ErrNotSupported }

// Write returns ErrNotSupported.
func (*Injector) Write([][]byte, int) (int, error) { return 0, ErrNotSupported }

// Close does nothing.
func (*Injector) Close() error { return nil }

// CaptureConfig configures a Capturer.
type CaptureConfig struct {
	Filter  []bpf.RawInstruction
	Ifindex int
	Batch   int
}

// Capturer is not supported on this platform.
type Capturer struct{}

// NewCapturer returns ErrNotSupported.
func NewCapturer(CaptureConfig) (*Capturer, error) { return nil, ErrNotSupported }

// Read returns ErrNotSupported.
func (*Capturer) Read([][]byte, []Info, int) (int, error) { return 0, ErrNotSupported }

// SetReadDeadline returns ErrNotSupported.
func (*Capturer) SetReadDeadline(time.Time) error { return ErrNotSupported }

// Close does nothing.
func (*Capturer) Close() error { return nil }

// LinkInjector is not supported on this platform.
type LinkInjector struct{}

// NewLinkInjector returns ErrNotSupported.
func NewLinkInjector(int, uint32) (*LinkInjector, error) { return nil, ErrNotSupported }

// Write returns ErrNotSupported.
func (*LinkInjector) Write(*packet.Packet, packet.Offload) error { return ErrNotSupported }

// Close does nothing.
func (*LinkInjector) Close() error { return nil }

// IPv4 returns ErrNotSupported.
func (*LinkInjector) IPv4() error { return ErrNotSupported }
