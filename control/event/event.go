package event

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/ticket"
	"github.com/adjacentnet/adjacent/internal/wire"
)

// Version is the version byte of the event encoding.
const Version = 1

// Kind says what an event announces.
type Kind uint8

const (
	// KindRevoked: the subject is no longer a member; refuse it until the event's Until,
	// when any credential it was given has expired.
	KindRevoked Kind = 1
	// KindAttributes: the subject's attributes changed; the subject fetches a fresh
	// credential at once, so the live sessions its peers hold are judged by the new ones.
	// It carries no credential: acting on it costs one refresh and grants nothing.
	KindAttributes Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindRevoked:
		return "revoked"
	case KindAttributes:
		return "attributes"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Bounds of an event, checked when it is signed, decoded and verified.
const (
	// MaxAge is how long after it was issued an event is still acted on. Events are sent
	// as they are issued; an older one is a replay.
	MaxAge = 5 * time.Minute
	// MaxClockSkew is how far in the future an event's issue time may be.
	MaxClockSkew = time.Minute
	// MaxRevocation bounds how long after its issue a revocation may last: longer than any
	// credential lives.
	MaxRevocation = 31 * 24 * time.Hour
	// MaxProjectLen is the longest project name (control/ticket.ValidProject).
	MaxProjectLen = 63
	// maxAttestationLen bounds the attestation's encoding; a credential-signing one is 154
	// bytes.
	maxAttestationLen = 512
	// MaxSize bounds an encoded event.
	MaxSize = 1 + 1 + 1 + MaxProjectLen + 2*sha256.Size + 8 + 8 + 2 + maxAttestationLen + ed25519.SignatureSize
)

const signContext = "adjacent control event v1\x00"

// Errors; callers test them with errors.Is to count why events were dropped.
var (
	// ErrMalformed: the encoding is structurally invalid.
	ErrMalformed = errors.New("malformed event")
	// ErrVersion: the encoding carries a version this package does not know.
	ErrVersion = errors.New("unsupported event version")
	// ErrUntrustedIssuer: the event is not the project authority's.
	ErrUntrustedIssuer = errors.New("event issuer is not the project's authority")
	// ErrSigningKey: the key that signed the event is not attested by the authority for
	// credential signing, or its attestation is not valid now.
	ErrSigningKey = errors.New("event signing key not valid")
	// ErrBadSignature: the signature is not the attested key's over the event.
	ErrBadSignature = errors.New("event signature not valid")
	// ErrOtherProject: the event is for another project.
	ErrOtherProject = errors.New("event for another project")
	// ErrStale: the event was issued more than MaxAge ago (a replay), or further in the
	// future than MaxClockSkew.
	ErrStale = errors.New("stale event")
)

// Event is what the authority announces.
type Event struct {
	Project string
	Kind    Kind
	Subject identity.Identifier // whom the event is about
	Issued  time.Time           // kept to the second
	Until   time.Time           // KindRevoked: refuse Subject until then; kept to the second
}

// Signed is an event with the authority's signature: what travels.
//
// Wire form: version (1 byte), kind (1), project (1-byte length, at most 63 bytes), issuer
// and subject (the 32-byte hashes their identifiers name), issued and until (unix seconds,
// 8 bytes big-endian each), the attestation of the signing key (2-byte length), then the
// signature (64) by the attested key over "adjacent control event v1\x00" || everything
// before it.
type Signed struct {
	ev          Event
	issuer      [sha256.Size]byte
	subject     [sha256.Size]byte
	issued      int64
	until       int64
	attestation *identity.Attestation
	sig         [ed25519.SignatureSize]byte
}

// Sign has signer, the authority issuer's credential-signing key that att attests, sign e.
func Sign(signer identity.Signer, att *identity.Attestation, issuer identity.Identifier, e Event) (*Signed, error) {
	s := &Signed{attestation: att, issued: e.Issued.Unix(), until: e.Until.Unix()}
	var err error
	if s.issuer, err = issuer.Hash(); err != nil {
		return nil, fmt.Errorf("event: sign: issuer: %w", err)
	}
	if s.subject, err = e.Subject.Hash(); err != nil {
		return nil, fmt.Errorf("event: sign: subject: %w", err)
	}
	s.ev = Event{Project: e.Project, Kind: e.Kind, Subject: e.Subject, Issued: time.Unix(s.issued, 0), Until: time.Unix(s.until, 0)}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("event: sign: %w", err)
	}
	if att == nil {
		return nil, fmt.Errorf("event: sign: no attestation of the signing key: %w", ErrMalformed)
	}
	if !equalKey(signer.Public(), att.PublicKey()) {
		return nil, fmt.Errorf("event: sign: the signer is not the attested key: %w", ErrSigningKey)
	}
	msg := s.signedMessage()
	sig, err := signer.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("event: sign: %w", err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(signer.Public(), msg, sig) {
		return nil, fmt.Errorf("event: sign: the signer returned a signature that does not verify: %w", ErrBadSignature)
	}
	copy(s.sig[:], sig)
	return s, nil
}

func equalKey(a, b []byte) bool {
	return len(a) == ed25519.PublicKeySize && string(a) == string(b)
}

// check checks the fields that do not need a key: project name, kind, times.
func (s *Signed) check() error {
	if !ticket.ValidProject(s.ev.Project) {
		return fmt.Errorf("project name %q: %w", s.ev.Project, ErrMalformed)
	}
	if s.ev.Kind != KindRevoked && s.ev.Kind != KindAttributes {
		return fmt.Errorf("%v: %w", s.ev.Kind, ErrMalformed)
	}
	if s.issued < 0 {
		return fmt.Errorf("issued %d before 1970: %w", s.issued, ErrMalformed)
	}
	if s.until <= s.issued || s.until-s.issued > int64(MaxRevocation/time.Second) {
		return fmt.Errorf("until %v: want after issued %v and within %v of it: %w",
			time.Unix(s.until, 0).UTC(), time.Unix(s.issued, 0).UTC(), MaxRevocation, ErrMalformed)
	}
	return nil
}

// Event returns the event as it was signed. It is not verified: see Verify.
func (s *Signed) Event() Event { return s.ev }

// Issuer returns the identifier of the authority the event claims to be from.
func (s *Signed) Issuer() identity.Identifier { return identity.IdentifierOf(s.issuer) }

// Verify checks that s is authority's, for project, and fresh at now, and returns its event:
//
//   - its issuer is authority (ErrUntrustedIssuer);
//   - it is for project (ErrOtherProject);
//   - it was issued at most MaxAge before now and at most MaxClockSkew after (ErrStale);
//   - the attestation is the authority's, for a credential-signing key, and valid at now
//     under the authority's current primary key (ErrSigningKey);
//   - the signature is by that key (ErrBadSignature).
//
// The checks run in that order, the cheap ones before the signatures, and the first failure
// is returned.
func (s *Signed) Verify(authority *identity.History, project string, now time.Time) (Event, error) {
	return s.VerifyWithin(authority, project, now, identity.RetiredKeyGrace)
}

// VerifyWithin is Verify with the attestation checked by identity.Attestation.VerifyWithin
// and grace: after the authority rotated, an event signed under a key its retired primary
// key attested (backdated by a thief of that key, say) is refused from grace after the
// rotation on. A project passes its credential lifetime plus clock skew.
func (s *Signed) VerifyWithin(authority *identity.History, project string, now time.Time, grace time.Duration) (Event, error) {
	issuer := s.Issuer()
	if issuer != authority.Identifier() {
		return Event{}, fmt.Errorf("event: verify: issued by %s, not the authority %s: %w", issuer, authority.Identifier(), ErrUntrustedIssuer)
	}
	if s.ev.Project != project {
		return Event{}, fmt.Errorf("event: verify: for project %q, not %q: %w", s.ev.Project, project, ErrOtherProject)
	}
	if issued := s.ev.Issued; issued.Before(now.Add(-MaxAge)) || issued.After(now.Add(MaxClockSkew)) {
		return Event{}, fmt.Errorf("event: verify: issued %v, now %v: %w", issued.UTC(), now.UTC(), ErrStale)
	}
	a := s.attestation
	if a.Subject() != issuer || a.Purpose() != identity.PurposeCredentialSigning {
		return Event{}, fmt.Errorf("event: verify: signing key attested by %s for %v, want %s for %v: %w",
			a.Subject(), a.Purpose(), issuer, identity.PurposeCredentialSigning, ErrSigningKey)
	}
	if err := a.VerifyWithin(authority, now, grace); err != nil {
		return Event{}, fmt.Errorf("event: verify: %w: %w", ErrSigningKey, err)
	}
	if !ed25519.Verify(a.PublicKey(), s.signedMessage(), s.sig[:]) {
		return Event{}, fmt.Errorf("event: verify: %w", ErrBadSignature)
	}
	return s.ev, nil
}

func (s *Signed) signedMessage() []byte {
	return s.appendData([]byte(signContext))
}

func (s *Signed) appendData(b []byte) []byte {
	b = append(b, Version, byte(s.ev.Kind))
	b = wire.AppendString8(b, s.ev.Project)
	b = append(b, s.issuer[:]...)
	b = append(b, s.subject[:]...)
	b = wire.AppendU64(b, uint64(s.issued))
	b = wire.AppendU64(b, uint64(s.until))
	return wire.AppendBytes16(b, s.attestation.Encode())
}

// Encode returns the wire form of s.
func (s *Signed) Encode() []byte {
	return append(s.appendData(make([]byte, 0, 256)), s.sig[:]...)
}

// Decode decodes a signed event. It checks structure only (lengths, version, kind, project
// name, times in order, the attestation's structure, no trailing bytes); Verify checks the
// rest. Errors wrap ErrMalformed or ErrVersion.
func Decode(b []byte) (*Signed, error) {
	s, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("event: decode: %w", err)
	}
	return s, nil
}

func parse(b []byte) (*Signed, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%d bytes, at most %d: %w", len(b), MaxSize, ErrMalformed)
	}
	var s Signed
	r := wire.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("version %d: %w", v, ErrVersion)
	}
	s.ev.Kind = Kind(r.U8("kind"))
	s.ev.Project = r.String8("project", MaxProjectLen)
	copy(s.issuer[:], r.Fixed("issuer", sha256.Size))
	copy(s.subject[:], r.Fixed("subject", sha256.Size))
	issued, until := r.U64("issued"), r.U64("until")
	rawAtt := r.Bytes16("attestation", maxAttestationLen)
	copy(s.sig[:], r.Fixed("signature", ed25519.SignatureSize))
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if issued > math.MaxInt64 || until > math.MaxInt64 {
		return nil, fmt.Errorf("times out of range: %w", ErrMalformed)
	}
	s.issued, s.until = int64(issued), int64(until)
	s.ev.Subject, s.ev.Issued, s.ev.Until = identity.IdentifierOf(s.subject), time.Unix(s.issued, 0), time.Unix(s.until, 0)
	if err := s.check(); err != nil {
		return nil, err
	}
	a, err := identity.DecodeAttestation(rawAtt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	s.attestation = a
	return &s, nil
}
