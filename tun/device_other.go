//go:build !linux

package tun

import "net/netip"

// Create is not supported on this platform.
func Create(cfg Config) (*Device, error) { return nil, ErrUnsupported }

// AddRoute is not supported on this platform.
func (d *Device) AddRoute(a netip.Addr) error { return ErrUnsupported }

// RemoveRoute is not supported on this platform.
func (d *Device) RemoveRoute(a netip.Addr) error { return ErrUnsupported }

// Close is not supported on this platform.
func (d *Device) Close() error { return ErrUnsupported }

func (d *Device) HasRoute(a netip.Addr) bool { return false }

// Frames is a device's packets with their virtio-net headers; not supported on this platform.
type Frames struct{}

// Frames is not supported on this platform.
func (d *Device) Frames() (*Frames, error) { return nil, ErrUnsupported }

// Read is not supported on this platform.
func (f *Frames) Read(bufs [][]byte, sizes []int) (int, error) { return 0, ErrUnsupported }

// Write is not supported on this platform.
func (f *Frames) Write(h, p []byte) error { return ErrUnsupported }
