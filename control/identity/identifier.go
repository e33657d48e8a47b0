package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Identifier names an identity: "I" followed by the lowercase hex SHA-256 of the identity's
// first change (65 characters). It is derived from a verified History, never taken on trust.
type Identifier string

// identifierLen is the length of an Identifier's text form.
const identifierLen = 1 + 2*sha256.Size

// ParseIdentifier checks that s has the shape of an identifier. It does not say that any
// identity with that identifier exists.
func ParseIdentifier(s string) (Identifier, error) {
	if _, ok := Identifier(s).hash(); !ok {
		if len(s) > 2*identifierLen {
			return "", fmt.Errorf("identity: parse identifier of %d bytes: %w", len(s), ErrBadIdentifier)
		}
		return "", fmt.Errorf("identity: parse identifier %q: want \"I\" and 64 lowercase hex digits: %w", s, ErrBadIdentifier)
	}
	return Identifier(s), nil
}

// String returns the text form.
func (id Identifier) String() string { return string(id) }

// hash returns the SHA-256 the identifier names, and whether id is well formed. Only
// lowercase hex is accepted, so each identity has exactly one text form.
func (id Identifier) hash() (h [sha256.Size]byte, ok bool) {
	if len(id) != identifierLen || id[0] != 'I' {
		return h, false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return h, false
		}
	}
	if _, err := hex.Decode(h[:], []byte(id[1:])); err != nil {
		return h, false
	}
	return h, true
}

// Hash returns the SHA-256 the identifier names, for encodings that carry it as 32 bytes; a
// malformed identifier is an error wrapping ErrBadIdentifier.
func (id Identifier) Hash() ([sha256.Size]byte, error) {
	h, ok := id.hash()
	if !ok {
		_, err := ParseIdentifier(string(id))
		return h, err
	}
	return h, nil
}

// IdentifierOf returns the identifier that names hash (the inverse of Identifier.Hash).
func IdentifierOf(hash [sha256.Size]byte) Identifier {
	return Identifier("I" + hex.EncodeToString(hash[:]))
}

func identifierOf(hash [sha256.Size]byte) Identifier { return IdentifierOf(hash) }
