package packet

import "errors"

// Errors of Parse, Rewrite and Verify.
var (
	ErrTruncated = errors.New("packet: truncated")
	ErrVersion   = errors.New("packet: not IPv4 or IPv6")
	ErrHeader    = errors.New("packet: malformed header")
	ErrNotTCP    = errors.New("packet: not TCP (IPv6 extension headers are not parsed)")
	ErrFragment  = errors.New("packet: IPv4 fragment")
	ErrFamily    = errors.New("packet: address family differs from the packet's")
	ErrChecksum  = errors.New("packet: bad checksum")
)
