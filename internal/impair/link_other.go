//go:build !linux

package impair

import "errors"

// ErrUnsupported is returned by New on platforms other than Linux.
var ErrUnsupported = errors.New("impair: impaired links need Linux (TUN devices and network namespaces)")

// Link is a running impaired link; on this platform there is none.
type Link struct{}

// New returns ErrUnsupported.
func New(cfg Config) (*Link, error) { return nil, ErrUnsupported }

// Devices returns nothing.
func (l *Link) Devices() (a, b string) { return "", "" }

// Stats returns zeros.
func (l *Link) Stats() (aToB, bToA Stats) { return Stats{}, Stats{} }

// Close does nothing.
func (l *Link) Close() error { return nil }
