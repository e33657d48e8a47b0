package securechannel

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// A transport message is counter (8 bytes, big-endian) || AES-256-GCM ciphertext || tag, with
// empty associated data and the counter as the Noise nonce (32 zero bits || counter).
const (
	headerLen = 8
	tagLen    = 16
	nonceLen  = 12
)

// Counter limits, as WireGuard's. The sender never uses a counter at or above
// rejectAfterMessages (2^64-1 is Noise's REKEY nonce, and the margin keeps the receiver's
// window arithmetic clear of wrapping); long before, at rehandshakeAfter, it asks the channel
// above for a new handshake.
const (
	rejectAfterMessages             = math.MaxUint64 - (1 << 13)
	defaultRehandshakeAfterMessages = 1 << 60
)

// Rekey schedule defaults.
const (
	defaultEpochBits       = 20      // a new key every 2^20 (~1M) messages
	defaultRekeyAfterBytes = 1 << 30 // or after 1 GiB sealed under one key
	defaultRekeyAfterTime  = 2 * time.Minute
	// maxEpochsAhead bounds the keys a receiver derives for one message, so a forged counter
	// far in the future costs a few derivations, not millions.
	maxEpochsAhead = 4
)

// rekeyConfig is the key schedule of one direction of a channel. Zero fields mean the
// defaults. Both ends of a direction must agree on epochBits and initialCounter.
type rekeyConfig struct {
	// epochBits splits the counter: the key epoch of a message is ctr >> epochBits, and every
	// epoch has its own key, the previous one's Noise REKEY. At most 63.
	epochBits uint
	// afterBytes and afterTime make the sender start a new epoch early, by jumping its counter
	// to the next epoch boundary, once an epoch has sealed that many plaintext bytes or lasted
	// that long.
	afterBytes uint64
	afterTime  time.Duration
	// rehandshakeAfter is the counter from which the sender reports needsRehandshake.
	rehandshakeAfter uint64
	// initialCounter is the first counter used, for tests near the limits. The handshake's
	// key is the key of epoch initialCounter >> epochBits.
	initialCounter uint64
	// now is the sender's clock for tests; nil means the monotonic clock, which is cheaper
	// to read per message than time.Now.
	now func() time.Time
}

func (c rekeyConfig) withDefaults() rekeyConfig {
	if c.epochBits == 0 {
		c.epochBits = defaultEpochBits
	}
	if c.epochBits > 63 {
		panic("securechannel: rekeyConfig.epochBits over 63")
	}
	if c.afterBytes == 0 {
		c.afterBytes = defaultRekeyAfterBytes
	}
	if c.afterTime == 0 {
		c.afterTime = defaultRekeyAfterTime
	}
	if c.rehandshakeAfter == 0 {
		c.rehandshakeAfter = defaultRehandshakeAfterMessages
	}
	return c
}

// takeKey returns the key of a transport CipherState from a finished handshake and
// invalidates cs, so the key has one user. flynn/noise's own Cipher cannot be used on the hot
// path: it allocates a nonce per message.
func takeKey(cs *noise.CipherState) cipher.AEAD {
	k := cs.UnsafeKey()
	cs.Cipher() // marks cs unusable
	a := newAEAD(&k)
	clear(k[:])
	return a
}

// newAEAD is Noise's AESGCM cipher with key k.
func newAEAD(k *[32]byte) cipher.AEAD {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 32-byte key cannot fail
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return a
}

// rekey is Noise's REKEY: the next key is the first 32 bytes of encrypting 32 zero bytes with
// nonce 2^64-1 and empty associated data.
func rekey(a cipher.AEAD) cipher.AEAD {
	var nonce [nonceLen]byte
	binary.BigEndian.PutUint64(nonce[4:], math.MaxUint64)
	var buf [32 + tagLen]byte
	a.Seal(buf[:0], nonce[:], buf[:32], nil)
	var k [32]byte
	copy(k[:], buf[:32])
	next := newAEAD(&k)
	clear(k[:])
	clear(buf[:])
	return next
}

// A nonce passed through the cipher.AEAD interface escapes, so a stack array would cost an
// allocation per message; pooled nonces cost none. Their first four bytes stay zero.
var noncePool = sync.Pool{New: func() any { return new([nonceLen]byte) }}

// sealInPlace encrypts b[headerLen:] under counter ctr into b[headerLen:len(b)+tagLen]; the
// caller has checked the capacity.
func sealInPlace(a cipher.AEAD, ctr uint64, b []byte) {
	n := noncePool.Get().(*[nonceLen]byte)
	binary.BigEndian.PutUint64(n[4:], ctr)
	a.Seal(b[headerLen:headerLen], n[:], b[headerLen:], nil)
	noncePool.Put(n)
}

// openInPlace authenticates and decrypts the message b with counter ctr, leaving the
// plaintext in b[headerLen:len(b)-tagLen].
func openInPlace(a cipher.AEAD, ctr uint64, b []byte) ([]byte, error) {
	n := noncePool.Get().(*[nonceLen]byte)
	binary.BigEndian.PutUint64(n[4:], ctr)
	pt, err := a.Open(b[headerLen:headerLen], n[:], b[headerLen:], nil)
	noncePool.Put(n)
	return pt, err
}
