package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns 64 random bits in hex (16 characters).
func New() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}
