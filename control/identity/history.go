package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"time"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// Version is the version byte of every change and attestation this package writes.
const Version = 1

// MaxChanges bounds a history: the first change and at most MaxChanges-1 rotations.
const MaxChanges = 32

// History is an identity's chain of changes. The first change introduces the primary key;
// each later change rotates it and is signed by the previous key and the new one.
//
// Every History is verified: New, Rotate and DecodeHistory only ever return or leave valid
// chains, and Verify checks one again; the zero History is not valid. A History is not safe
// for Rotate concurrent with other use; reading it concurrently is.
//
// Wire form: a change count (1 byte, 1..MaxChanges), then the changes in order. A change is
// its data followed by its signatures. The first change's data is version (1 byte), primary
// public key (32), created (unix seconds, 8 bytes big-endian), followed by that key's
// signature (64). A rotation's data is version, the SHA-256 of the previous change's data
// (32), the new public key (32) and created, followed by the previous key's and the new
// key's signatures (64 each). Signatures cover "adjacent identity change v1\x00" || data.
//
// The identifier is "I" || hex(SHA-256(first change data)); a change's hash covers its data
// but not its signatures, so the name depends only on what was signed.
type History struct {
	changes []change
	id      Identifier
}

// change is one link of a history. For the first change prev and sigPrev are zero.
type change struct {
	prev    [sha256.Size]byte
	key     [ed25519.PublicKeySize]byte
	created int64 // unix seconds, >= 0
	sigPrev [ed25519.SignatureSize]byte
	sigNew  [ed25519.SignatureSize]byte
}

const (
	firstDataLen    = 1 + ed25519.PublicKeySize + 8
	rotationDataLen = 1 + sha256.Size + ed25519.PublicKeySize + 8
)

// appendData appends the signed data of c, the first change when first is true.
func (c *change) appendData(b []byte, first bool) []byte {
	b = append(b, Version)
	if !first {
		b = append(b, c.prev[:]...)
	}
	b = append(b, c.key[:]...)
	return wire.AppendU64(b, uint64(c.created))
}

func (c *change) hash(first bool) [sha256.Size]byte {
	var buf [rotationDataLen]byte
	return sha256.Sum256(c.appendData(buf[:0], first))
}

// New starts an identity whose primary key is signer's, created at now.
func New(signer Signer, now time.Time) (*History, error) {
	created := now.Unix()
	if created < 0 {
		return nil, fmt.Errorf("identity: new: created %v is before 1970: %w", now, ErrMalformed)
	}
	c := change{created: created}
	pub := signer.Public()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("identity: new: signer public key of %d bytes: %w", len(pub), ErrMalformed)
	}
	copy(c.key[:], pub)
	var buf [firstDataLen]byte
	_, sig, err := sign(signer, contextChange, c.appendData(buf[:0], true))
	if err != nil {
		return nil, fmt.Errorf("identity: new: %w", err)
	}
	c.sigNew = sig
	return &History{changes: []change{c}, id: identifierOf(c.hash(true))}, nil
}

// Rotate appends a change that replaces the primary key, held by old, with the key held by
// next, at now. now must not be before the last change; next must be a key the history has
// never used.
func (h *History) Rotate(old, next Signer, now time.Time) error {
	if len(h.changes) >= MaxChanges {
		return fmt.Errorf("identity: rotate: history has %d changes: %w", len(h.changes), ErrTooManyChanges)
	}
	last := &h.changes[len(h.changes)-1]
	if p := old.Public(); len(p) != ed25519.PublicKeySize || [ed25519.PublicKeySize]byte(p) != last.key {
		return fmt.Errorf("identity: rotate: old signer is not the current primary key: %w", ErrWrongKey)
	}
	c := change{prev: last.hash(len(h.changes) == 1), created: now.Unix()}
	if c.created < last.created {
		return fmt.Errorf("identity: rotate: time %v is before the last change (%v): %w",
			now.UTC(), time.Unix(last.created, 0).UTC(), ErrBrokenChain)
	}
	p := next.Public()
	if len(p) != ed25519.PublicKeySize {
		return fmt.Errorf("identity: rotate: new signer public key of %d bytes: %w", len(p), ErrMalformed)
	}
	c.key = [ed25519.PublicKeySize]byte(p)
	if h.usesKey(&c.key) {
		return fmt.Errorf("identity: rotate: new key was already used by this identity: %w", ErrBrokenChain)
	}
	var buf [rotationDataLen]byte
	data := c.appendData(buf[:0], false)
	var err error
	if _, c.sigPrev, err = sign(old, contextChange, data); err != nil {
		return fmt.Errorf("identity: rotate: old key: %w", err)
	}
	if _, c.sigNew, err = sign(next, contextChange, data); err != nil {
		return fmt.Errorf("identity: rotate: new key: %w", err)
	}
	h.changes = append(h.changes, c)
	return nil
}

func (h *History) usesKey(k *[ed25519.PublicKeySize]byte) bool {
	for i := range h.changes {
		if h.changes[i].key == *k {
			return true
		}
	}
	return false
}

// changeAt returns the index of the change whose key was the primary key at unix time t:
// the last change made at or before t, or the first change for a time before the identity
// was created.
func (h *History) changeAt(t int64) int {
	i := len(h.changes) - 1
	for i > 0 && h.changes[i].created > t {
		i--
	}
	return i
}

// Extends checks that h is known or a continuation of it: the same identity, every change of
// known in the same place, possibly followed by more. A verifier that knows a history refuses
// one that does not extend it: a shorter one would bring back a retired key, and a fork names
// another key than the one the identity rotated to. The error wraps ErrWrongSubject or
// ErrNotExtension.
func (h *History) Extends(known *History) error {
	if h.id != known.id {
		return fmt.Errorf("identity: history of %s is not of %s: %w", h.id, known.id, ErrWrongSubject)
	}
	if len(h.changes) < len(known.changes) {
		return fmt.Errorf("identity: history of %s has %d changes, %d are known: %w", h.id, len(h.changes), len(known.changes), ErrNotExtension)
	}
	for i := range known.changes {
		a, b := &h.changes[i], &known.changes[i]
		if a.prev != b.prev || a.key != b.key || a.created != b.created {
			return fmt.Errorf("identity: history of %s differs from the known one at change %d: %w", h.id, i, ErrNotExtension)
		}
	}
	return nil
}

// Clone returns a copy of h, for Rotate to extend while h stays in use.
func (h *History) Clone() *History {
	return &History{changes: append([]change(nil), h.changes...), id: h.id}
}

// Changed returns when the current primary key became current: the time of the last change.
func (h *History) Changed() time.Time { return time.Unix(h.changes[len(h.changes)-1].created, 0) }

// Identifier returns the identity's identifier.
func (h *History) Identifier() Identifier { return h.id }

// PrimaryKey returns the current primary public key (a copy).
func (h *History) PrimaryKey() ed25519.PublicKey {
	k := h.changes[len(h.changes)-1].key
	return ed25519.PublicKey(k[:])
}

// Created returns when the identity was created (its first change).
func (h *History) Created() time.Time { return time.Unix(h.changes[0].created, 0) }

// Len returns the number of changes: 1 plus the number of rotations.
func (h *History) Len() int { return len(h.changes) }

// Verify checks every signature and link of the history. Histories from New, Rotate and
// DecodeHistory are already verified; Verify is for checking again.
func (h *History) Verify() error {
	if len(h.changes) == 0 || len(h.changes) > MaxChanges {
		return fmt.Errorf("identity: verify history: %d changes: %w", len(h.changes), ErrMalformed)
	}
	if err := verifyChanges(h.changes); err != nil {
		return fmt.Errorf("identity: verify history: %w", err)
	}
	if id := identifierOf(h.changes[0].hash(true)); id != h.id {
		return fmt.Errorf("identity: verify history: identifier %s does not match the first change (%s): %w", h.id, id, ErrBrokenChain)
	}
	return nil
}

func verifyChanges(cs []change) error {
	var buf [rotationDataLen]byte
	for i := range cs {
		c := &cs[i]
		if c.created < 0 {
			return fmt.Errorf("change %d: negative time: %w", i, ErrMalformed)
		}
		if i == 0 {
			if c.prev != [sha256.Size]byte{} || c.sigPrev != [ed25519.SignatureSize]byte{} {
				return fmt.Errorf("change 0: has a previous change: %w", ErrMalformed)
			}
			if !verify(&c.key, contextChange, c.appendData(buf[:0], true), &c.sigNew) {
				return fmt.Errorf("change 0: %w", ErrBadSignature)
			}
			continue
		}
		p := &cs[i-1]
		if c.prev != p.hash(i == 1) {
			return fmt.Errorf("change %d: previous hash does not match change %d: %w", i, i-1, ErrBrokenChain)
		}
		if c.created < p.created {
			return fmt.Errorf("change %d: created before change %d: %w", i, i-1, ErrBrokenChain)
		}
		for j := range i {
			if cs[j].key == c.key {
				return fmt.Errorf("change %d: reuses the key of change %d: %w", i, j, ErrBrokenChain)
			}
		}
		data := c.appendData(buf[:0], false)
		if !verify(&p.key, contextChange, data, &c.sigPrev) {
			return fmt.Errorf("change %d: previous key: %w", i, ErrBadSignature)
		}
		if !verify(&c.key, contextChange, data, &c.sigNew) {
			return fmt.Errorf("change %d: new key: %w", i, ErrBadSignature)
		}
	}
	return nil
}

// Encode returns the wire form of h.
func (h *History) Encode() []byte { return h.AppendTo(nil) }

// AppendTo appends the wire form of h to b.
func (h *History) AppendTo(b []byte) []byte {
	b = append(b, byte(len(h.changes)))
	for i := range h.changes {
		c := &h.changes[i]
		b = c.appendData(b, i == 0)
		if i > 0 {
			b = append(b, c.sigPrev[:]...)
		}
		b = append(b, c.sigNew[:]...)
	}
	return b
}

// DecodeHistory decodes and verifies a history. The identifier is derived from the first
// change, never read from the input. Structural errors wrap ErrMalformed (and the wire
// package's error) or ErrVersion; failed checks wrap ErrBadSignature or ErrBrokenChain.
func DecodeHistory(b []byte) (*History, error) {
	h, err := parseHistory(b)
	if err != nil {
		return nil, fmt.Errorf("identity: decode history: %w", err)
	}
	if err := verifyChanges(h.changes); err != nil {
		return nil, fmt.Errorf("identity: decode history: %w", err)
	}
	return h, nil
}

// parseHistory decodes the structure of a history without checking signatures or links.
func parseHistory(b []byte) (*History, error) {
	r := wire.NewReader(b)
	n := r.Count("changes", MaxChanges)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("no changes: %w", ErrMalformed)
	}
	cs := make([]change, 0, n)
	for i := range n {
		var c change
		if v := r.U8("version"); r.Err() == nil && v != Version {
			return nil, fmt.Errorf("change %d: version %d: %w", i, v, ErrVersion)
		}
		if i > 0 {
			copy(c.prev[:], r.Fixed("previous", sha256.Size))
		}
		copy(c.key[:], r.Fixed("key", ed25519.PublicKeySize))
		created := r.U64("created")
		if r.Err() == nil && created > math.MaxInt64 {
			return nil, fmt.Errorf("change %d: created %d out of range: %w", i, created, ErrMalformed)
		}
		c.created = int64(created)
		if i > 0 {
			copy(c.sigPrev[:], r.Fixed("previous signature", ed25519.SignatureSize))
		}
		copy(c.sigNew[:], r.Fixed("signature", ed25519.SignatureSize))
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%w: change %d %w", ErrMalformed, i, err)
		}
		cs = append(cs, c)
	}
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &History{changes: cs, id: identifierOf(cs[0].hash(true))}, nil
}
