package authority

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/adjacentnet/adjacent/control/identity"
)

// The row codec every Store shares: attributes as a JSON object, identifiers as text, a
// ticket's secret hash as 32 bytes.

// EncodeAttributes returns attrs as a JSON object. Strings must be valid UTF-8, which JSON
// would otherwise silently replace.
func EncodeAttributes(attrs map[string]string) (string, error) {
	for k, v := range attrs {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return "", fmt.Errorf("attribute %q: not valid UTF-8", k)
		}
	}
	if attrs == nil {
		return "{}", nil
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return "", fmt.Errorf("attributes: %w", err)
	}
	return string(b), nil
}

// DecodeAttributes reads what EncodeAttributes wrote, as a non-nil map.
func DecodeAttributes(s string) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored attributes: %w", err)
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// StoredMember returns the member of a stored row's columns.
func StoredMember(id, attrs, by string, added time.Time, ticket []byte) (Member, error) {
	m := Member{Identifier: identity.Identifier(id), AddedBy: identity.Identifier(by), Added: added}
	if len(ticket) == len(m.Ticket) {
		copy(m.Ticket[:], ticket)
	}
	var err error
	m.Attributes, err = DecodeAttributes(attrs)
	return m, err
}

// SetStored fills in t the columns of a stored row that need decoding.
func (t *Ticket) SetStored(hash []byte, attrs, by string) error {
	if len(hash) != len(t.SecretHash) {
		return fmt.Errorf("stored secret hash of %d bytes", len(hash))
	}
	copy(t.SecretHash[:], hash)
	t.CreatedBy = identity.Identifier(by)
	var err error
	t.Attributes, err = DecodeAttributes(attrs)
	return err
}
