package tcp

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/adjacentnet/adjacent/routing"
)

// ProtocolVersion is the last preamble byte. A peer with another version is refused.
const ProtocolVersion = 1

var preamble = [4]byte{'a', 'd', 'j', ProtocolVersion}

// checkPreamble explains a foreign or unsupported preamble.
func checkPreamble(p [4]byte) error {
	if p == preamble {
		return nil
	}
	if p[0] == 'a' && p[1] == 'd' && p[2] == 'j' {
		return fmt.Errorf("peer speaks adjacent transport version %d, this node speaks %d", p[3], ProtocolVersion)
	}
	return fmt.Errorf("not an adjacent peer (preamble %q)", p[:])
}

// frameHeaderLen is the size of a frame's length prefix.
const frameHeaderLen = 4

// frameReader reads frames: a length, checked by the caller against its limit before
// anything is allocated, then the body into a pooled buffer.
type frameReader struct {
	r   io.Reader
	hdr [frameHeaderLen]byte
}

// header reads a frame's length; 0 is a heartbeat. The length stays a uint32 until the
// caller has checked it against its limit: as an int it would be negative on 32-bit
// platforms from 0x80000000 on, and pass a check against any limit.
func (f *frameReader) header() (uint32, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(f.hdr[:]), nil
}

// checkLength returns a frame's length n as an int if it is at most limit (which is
// positive), or an error.
func checkLength(n uint32, limit int) (int, error) {
	if uint64(n) > uint64(limit) {
		return 0, fmt.Errorf("frame of %d bytes over the limit of %d", n, limit)
	}
	return int(n), nil
}

// body reads the n bytes of a frame's body into a new buffer that the caller owns.
func (f *frameReader) body(n int) (*routing.Buffer, error) {
	b := routing.NewBuffer(n)
	if _, err := io.ReadFull(f.r, b.Extend(n)); err != nil {
		b.Release()
		return nil, fmt.Errorf("incomplete frame of %d bytes: %w", n, err)
	}
	return b, nil
}

// appendFrame appends the frame of body to dst (for tests; the send path frames in place).
func appendFrame(dst, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(body))), body...)
}
