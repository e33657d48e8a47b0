package tcp

import "fmt"

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
