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
