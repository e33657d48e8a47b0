package vault

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// keyKind is the algorithm of a key.
type keyKind uint8

const (
	// kindEd25519 keys sign: identity primary keys and credential-signing keys.
	kindEd25519 keyKind = 1
	// kindX25519 keys agree: Noise static keys.
	kindX25519 keyKind = 2
)

func (k keyKind) String() string {
	switch k {
	case kindEd25519:
		return "ed25519"
	case kindX25519:
		return "x25519"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// fileVersion is the first byte of a key file.
const fileVersion = 1

// keySize is the size of both kinds' private (seed or scalar) and public keys.
const keySize = 32

// Key file: version (1 byte), kind (1 byte), private key (32: the Ed25519 seed or the
// X25519 scalar), public key (32). The public key is redundant and checked on load, so a
// damaged file is noticed rather than used.
func encodeKeyFile(kind keyKind, priv, pub []byte) []byte {
	b := make([]byte, 0, 2+2*keySize)
	b = append(b, fileVersion, byte(kind))
	b = append(b, priv...)
	return append(b, pub...)
}

func decodeKeyFile(data []byte, want keyKind) (priv, pub [keySize]byte, err error) {
	r := wire.NewReader(data)
	version, kind := r.U8("version"), keyKind(r.U8("kind"))
	copy(priv[:], r.Fixed("private key", keySize))
	copy(pub[:], r.Fixed("public key", keySize))
	if err := r.Finish(); err != nil {
		return priv, pub, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if version != fileVersion {
		return priv, pub, fmt.Errorf("version %d: %w", version, ErrCorrupt)
	}
	if kind != want {
		return priv, pub, fmt.Errorf("%v key, want %v: %w", kind, want, ErrWrongKind)
	}
	derived, err := publicKey(kind, priv[:])
	if err != nil {
		return priv, pub, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(derived, pub[:]) {
		return priv, pub, fmt.Errorf("public key does not match private key: %w", ErrCorrupt)
	}
	return priv, pub, nil
}

func publicKey(kind keyKind, priv []byte) ([]byte, error) {
	switch kind {
	case kindEd25519:
		return ed25519.NewKeyFromSeed(priv).Public().(ed25519.PublicKey), nil
	case kindX25519:
		k, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			return nil, err
		}
		return k.PublicKey().Bytes(), nil
	}
	return nil, fmt.Errorf("unknown key kind %d", kind)
}

// generate makes and stores a new key of kind under name.
func (v *Vault) generate(kind keyKind, name string) (priv, pub [keySize]byte, err error) {
	op := "generate " + kind.String()
	if err := v.check(op, name); err != nil {
		return priv, pub, err
	}
	if _, err := io.ReadFull(v.rand, priv[:]); err != nil {
		return priv, pub, fmt.Errorf("vault: %s %q: read randomness: %w", op, name, err)
	}
	p, err := publicKey(kind, priv[:])
	if err != nil {
		clear(priv[:])
		return priv, pub, fmt.Errorf("vault: %s %q: %w", op, name, err)
	}
	copy(pub[:], p)
	if err := v.create(name, encodeKeyFile(kind, priv[:], pub[:])); err != nil {
		clear(priv[:])
		return priv, pub, fmt.Errorf("vault: %s %q: %w", op, name, err)
	}
	return priv, pub, nil
}

// load reads the key name, which must be of kind.
func (v *Vault) load(kind keyKind, name string) (priv, pub [keySize]byte, err error) {
	op := "load " + kind.String()
	if err := v.check(op, name); err != nil {
		return priv, pub, err
	}
	data, err := v.read(name)
	if err != nil {
		return priv, pub, fmt.Errorf("vault: %s %q: %w", op, name, err)
	}
	defer clear(data)
	if priv, pub, err = decodeKeyFile(data, kind); err != nil {
		clear(priv[:])
		return priv, pub, fmt.Errorf("vault: %s %q: %s: %w", op, name, v.path(name), err)
	}
	return priv, pub, nil
}

// GenerateEd25519 makes a new Ed25519 key and stores it as name. It fails with ErrExists
// if name is taken.
func (v *Vault) GenerateEd25519(name string) (*Ed25519Key, error) {
	seed, _, err := v.generate(kindEd25519, name)
	if err != nil {
		return nil, err
	}
	return newEd25519Key(name, &seed), nil
}

// Ed25519 loads the Ed25519 key name.
func (v *Vault) Ed25519(name string) (*Ed25519Key, error) {
	seed, _, err := v.load(kindEd25519, name)
	if err != nil {
		return nil, err
	}
	return newEd25519Key(name, &seed), nil
}

// GenerateX25519 makes a new X25519 key and stores it as name. It fails with ErrExists if
// name is taken.
func (v *Vault) GenerateX25519(name string) (*X25519Key, error) {
	priv, pub, err := v.generate(kindX25519, name)
	if err != nil {
		return nil, err
	}
	return &X25519Key{name: name, pub: pub, priv: newSecret(&priv)}, nil
}

// X25519 loads the X25519 key name.
func (v *Vault) X25519(name string) (*X25519Key, error) {
	priv, pub, err := v.load(kindX25519, name)
	if err != nil {
		return nil, err
	}
	return &X25519Key{name: name, pub: pub, priv: newSecret(&priv)}, nil
}

// secret holds private key bytes two pointers away. fmt cannot call the redacting methods
// of a key stored in an unexported struct field, and prints such a field by reflection; a
// pointer to a pointer is the one shape it then prints as an address for every verb (one
// pointer to an array is dereferenced when a verb does not fit), so the bytes never show.
type secret[A any] struct{ p **A }

func newSecret[A any](a *A) secret[A] { return secret[A]{&a} }

func (s secret[A]) get() *A { return *s.p }

// Ed25519Key is an Ed25519 private key from the vault. It signs but never gives out its
// private bytes, and prints and logs only its name and public key. It satisfies
// identity.Signer.
type Ed25519Key struct {
	name string
	pub  ed25519.PublicKey
	priv secret[[ed25519.PrivateKeySize]byte]
}

func newEd25519Key(name string, seed *[keySize]byte) *Ed25519Key {
	k := ed25519.NewKeyFromSeed(seed[:])
	clear(seed[:])
	priv := new([ed25519.PrivateKeySize]byte)
	copy(priv[:], k)
	clear(k)
	return &Ed25519Key{name: name, pub: ed25519.PublicKey(bytes.Clone(priv[keySize:])), priv: newSecret(priv)}
}

// Name returns the key's name in the vault.
func (k *Ed25519Key) Name() string { return k.name }

// Public returns the public key (a copy).
func (k *Ed25519Key) Public() ed25519.PublicKey { return bytes.Clone(k.pub) }

// Sign returns the Ed25519 signature of msg. It never fails; the error is there for
// identity.Signer.
func (k *Ed25519Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv.get()[:], msg), nil }

// Equal reports whether k and o hold the same private key, comparing in constant time.
func (k *Ed25519Key) Equal(o *Ed25519Key) bool {
	return subtle.ConstantTimeCompare(k.priv.get()[:], o.priv.get()[:]) == 1
}

// String, GoString, Format and LogValue redact the private key. They have value receivers so
// that a dereferenced key redacts too.

func (k Ed25519Key) String() string {
	return "vault.Ed25519Key{name: " + strconv.Quote(k.name) + ", public: " + hex.EncodeToString(k.pub) + ", private: REDACTED}"
}

func (k Ed25519Key) GoString() string { return k.String() }

// Format prints the redacted String for every verb.
func (k Ed25519Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

func (k Ed25519Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", "ed25519"), slog.String("name", k.name),
		slog.String("public", hex.EncodeToString(k.pub)))
}

// X25519Key is an X25519 private key from the vault: a Noise static key. It prints and logs
// only its name and public key.
type X25519Key struct {
	name string
	pub  [keySize]byte
	priv secret[[keySize]byte]
}

// Name returns the key's name in the vault.
func (k *X25519Key) Name() string { return k.name }

// Public returns the public key.
func (k *X25519Key) Public() [32]byte { return k.pub }

// DH returns the key pair in the form github.com/flynn/noise takes its static key.
//
// This is the one place private bytes leave the vault: flynn/noise performs the
// Diffie-Hellman operations of the handshake itself and has no interface for delegating
// them, so its HandshakeState needs the raw private key in Config.StaticKeypair. Callers pass
// the result straight to noise.NewHandshakeState and keep no other copy; each call returns
// fresh copies.
func (k *X25519Key) DH() noise.DHKey {
	return noise.DHKey{Private: bytes.Clone(k.priv.get()[:]), Public: bytes.Clone(k.pub[:])}
}

// Equal reports whether k and o hold the same private key, comparing in constant time.
func (k *X25519Key) Equal(o *X25519Key) bool {
	return subtle.ConstantTimeCompare(k.priv.get()[:], o.priv.get()[:]) == 1
}

// String, GoString, Format and LogValue redact the private key.

func (k X25519Key) String() string {
	return "vault.X25519Key{name: " + strconv.Quote(k.name) + ", public: " + hex.EncodeToString(k.pub[:]) + ", private: REDACTED}"
}

func (k X25519Key) GoString() string { return k.String() }

// Format prints the redacted String for every verb.
func (k X25519Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

func (k X25519Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", "x25519"), slog.String("name", k.name),
		slog.String("public", hex.EncodeToString(k.pub[:])))
}
