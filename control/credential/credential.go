package credential

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/internal/wire"
)

// Version is the version byte of the credential and bundle encodings.
const Version = 1

// Limits on attributes.
const (
	MaxAttributes = 32   // attributes in one credential
	MaxKeyLen     = 64   // bytes in an attribute name
	MaxValueLen   = 1024 // bytes in an attribute value
)

const (
	signatureSize = ed25519.SignatureSize
	signContext   = "adjacent credential v1\x00"
)

// MaxClockSkew is how far in the future a credential's issue time may be and still verify.
const MaxClockSkew = time.Minute

// Credential is an authority's (the issuer's) signed statement that a subject has some
// attributes from issued until expires. Credentials are immutable.
//
// Wire form: version (1 byte), issuer and subject (the 32-byte hashes their identifiers
// name), issued and expires (unix seconds, 8 bytes big-endian each), the attribute count
// (1 byte), each attribute as its name (1-byte length) and value (2-byte length) in strictly
// increasing order of name, then the signature (64) by the issuer's credential-signing key
// over "adjacent credential v1\x00" || everything before it.
type Credential struct {
	issuer  [sha256.Size]byte
	subject [sha256.Size]byte
	issued  int64
	expires int64
	attrs   []attribute // sorted by key, keys unique
	sig     [signatureSize]byte
}

type attribute struct{ key, value string }

// Issue has signer, the issuer's credential-signing key, sign a credential saying that
// subject has attrs from issued until expires. Times are kept to the second.
func Issue(signer identity.Signer, issuer, subject identity.Identifier, attrs map[string]string, issued, expires time.Time) (*Credential, error) {
	c := &Credential{issued: issued.Unix(), expires: expires.Unix()}
	var err error
	if c.issuer, err = issuer.Hash(); err != nil {
		return nil, fmt.Errorf("credential: issue: issuer: %w", err)
	}
	if c.subject, err = subject.Hash(); err != nil {
		return nil, fmt.Errorf("credential: issue: subject: %w", err)
	}
	if err := CheckAttributes(attrs); err != nil {
		return nil, fmt.Errorf("credential: issue: %w", err)
	}
	if err := checkTimes(c.issued, c.expires); err != nil {
		return nil, fmt.Errorf("credential: issue: %w", err)
	}
	for k, v := range attrs {
		c.attrs = append(c.attrs, attribute{k, v})
	}
	slices.SortFunc(c.attrs, func(a, b attribute) int { return strings.Compare(a.key, b.key) })

	pub := signer.Public()
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("credential: issue: signer public key of %d bytes: %w", len(pub), ErrMalformed)
	}
	msg := c.signedMessage()
	sig, err := signer.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("credential: issue: sign: %w", err)
	}
	// A faulty signer must never produce a credential that fails verification later.
	if len(sig) != signatureSize || !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("credential: issue: signer returned a signature that does not verify: %w", ErrBadSignature)
	}
	copy(c.sig[:], sig)
	return c, nil
}

// CheckAttributes reports whether attrs can be put in a credential: at most MaxAttributes,
// names matching ^[a-z][a-z0-9_.-]{0,63}$, values of valid UTF-8 of at most MaxValueLen
// bytes.
func CheckAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return fmt.Errorf("%d attributes, at most %d: %w", len(attrs), MaxAttributes, ErrMalformed)
	}
	for k, v := range attrs {
		if err := checkAttribute(k, v); err != nil {
			return err
		}
	}
	return nil
}

func checkAttribute(k, v string) error {
	if !validKey(k) {
		return fmt.Errorf("attribute name %q: want a lower-case letter, then up to %d of a-z 0-9 _ . -: %w", k, MaxKeyLen-1, ErrMalformed)
	}
	if len(v) > MaxValueLen {
		return fmt.Errorf("attribute %s: value of %d bytes, at most %d: %w", k, len(v), MaxValueLen, ErrMalformed)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("attribute %s: value is not valid UTF-8: %w", k, ErrMalformed)
	}
	return nil
}

// validKey reports whether k matches ^[a-z][a-z0-9_.-]{0,63}$.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLen || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkTimes(issued, expires int64) error {
	if issued < 0 {
		return fmt.Errorf("issued %d before 1970: %w", issued, ErrMalformed)
	}
	if expires <= issued {
		return fmt.Errorf("expires %v not after issued %v: %w",
			time.Unix(expires, 0).UTC(), time.Unix(issued, 0).UTC(), ErrMalformed)
	}
	return nil
}

// Issuer returns the identifier of the authority that issued c.
func (c *Credential) Issuer() identity.Identifier { return identity.IdentifierOf(c.issuer) }

// Subject returns the identifier of the identity c is about.
func (c *Credential) Subject() identity.Identifier { return identity.IdentifierOf(c.subject) }

// Issued returns when c was issued.
func (c *Credential) Issued() time.Time { return time.Unix(c.issued, 0) }

// Expires returns when c stops holding.
func (c *Credential) Expires() time.Time { return time.Unix(c.expires, 0) }

// Attributes returns a copy of c's attributes.
func (c *Credential) Attributes() map[string]string {
	m := make(map[string]string, len(c.attrs))
	for _, a := range c.attrs {
		m[a.key] = a.value
	}
	return m
}

// verifySignature reports whether c's signature verifies under pub.
func (c *Credential) verifySignature(pub []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, c.signedMessage(), c.sig[:])
}

func (c *Credential) signedMessage() []byte {
	return c.appendData([]byte(signContext))
}

func (c *Credential) appendData(b []byte) []byte {
	b = append(b, Version)
	b = append(b, c.issuer[:]...)
	b = append(b, c.subject[:]...)
	b = wire.AppendU64(b, uint64(c.issued))
	b = wire.AppendU64(b, uint64(c.expires))
	b = append(b, byte(len(c.attrs)))
	for _, a := range c.attrs {
		b = wire.AppendString8(b, a.key)
		b = wire.AppendString16(b, a.value)
	}
	return b
}

// Encode returns the wire form of c.
func (c *Credential) Encode() []byte { return c.AppendTo(nil) }

// AppendTo appends the wire form of c to b.
func (c *Credential) AppendTo(b []byte) []byte {
	return append(c.appendData(b), c.sig[:]...)
}

// Decode decodes a credential. It checks structure only (lengths, version, attribute names,
// values and order, times in order); Bundle.Verify checks the signature and validity.
// Errors wrap ErrMalformed (and the wire package's error) or ErrVersion.
func Decode(b []byte) (*Credential, error) {
	c, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("credential: decode: %w", err)
	}
	return c, nil
}

func parse(b []byte) (*Credential, error) {
	var c Credential
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("version %d: %w", v, ErrVersion)
	}
	copy(c.issuer[:], r.Fixed("issuer", sha256.Size))
	copy(c.subject[:], r.Fixed("subject", sha256.Size))
	issued, expires := r.U64("issued"), r.U64("expires")
	n := r.Count("attributes", MaxAttributes)
	for i := range n {
		k := r.String8("attribute name", MaxKeyLen)
		v := r.String16("attribute value", MaxValueLen)
		if r.Err() != nil {
			break
		}
		if err := checkAttribute(k, v); err != nil {
			return nil, err
		}
		if i > 0 && k <= c.attrs[i-1].key {
			return nil, fmt.Errorf("attribute %s after %s: names must be unique and sorted: %w", k, c.attrs[i-1].key, ErrMalformed)
		}
		c.attrs = append(c.attrs, attribute{k, v})
	}
	copy(c.sig[:], r.Fixed("signature", signatureSize))
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if issued > math.MaxInt64 || expires > math.MaxInt64 {
		return nil, fmt.Errorf("times out of range: %w", ErrMalformed)
	}
	c.issued, c.expires = int64(issued), int64(expires)
	if err := checkTimes(c.issued, c.expires); err != nil {
		return nil, err
	}
	return &c, nil
}
