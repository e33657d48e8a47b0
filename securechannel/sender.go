package securechannel

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
)

// sender seals the transport messages of one direction of a channel. It is safe for
// concurrent use: the many sessions sharing a channel seal in parallel, each holding the lock
// only to take a counter and its key.
type sender struct {
	cfg         rekeyConfig
	born        time.Time // origin of elapsed
	rehandshake atomic.Bool

	mu         sync.Mutex // guards the rest
	next       uint64     // next counter to use
	epoch      uint64     // epoch of aead
	aead       cipher.AEAD
	epochBytes uint64        // plaintext bytes sealed in this epoch
	epochBegan time.Duration // elapsed when this epoch began
}

// newSender returns a sender keyed by cs, the sending CipherState of a finished handshake,
// which it takes over: cs must not be used again.
func newSender(cs *noise.CipherState, cfg rekeyConfig) *sender {
	cfg = cfg.withDefaults()
	s := &sender{
		cfg:   cfg,
		born:  time.Now(),
		next:  cfg.initialCounter,
		epoch: cfg.initialCounter >> cfg.epochBits,
		aead:  takeKey(cs),
	}
	if cfg.now != nil {
		s.born = cfg.now()
	}
	s.rehandshake.Store(s.next >= cfg.rehandshakeAfter)
	return s
}

// seal encrypts one message in place. b is 8 reserved bytes followed by the plaintext, with
// cap(b) >= len(b)+16. seal writes the counter into b[:8], encrypts the plaintext in place and
// returns b[:len(b)+16], the transport message; on error b is untouched. Messages sealed
// concurrently may reach the wire out of counter order, which the receiver's window absorbs.
func (s *sender) seal(b []byte) ([]byte, error) {
	if len(b) < headerLen || cap(b)-len(b) < tagLen {
		return nil, errSealBuffer
	}
	now := s.elapsed() // read outside the lock, which stays a few instructions long
	s.mu.Lock()
	ctr, aead, err := s.take(uint64(len(b)-headerLen), now)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint64(b, ctr)
	sealInPlace(aead, ctr, b)
	return b[:len(b)+tagLen], nil
}

// take reserves the counter for a message of n plaintext bytes and returns it with the key of
// its epoch. s.mu is held.
func (s *sender) take(n uint64, now time.Duration) (uint64, cipher.AEAD, error) {
	ctr := s.next
	bits := s.cfg.epochBits
	if ctr>>bits == s.epoch && (s.epochBytes >= s.cfg.afterBytes || now-s.epochBegan >= s.cfg.afterTime) {
		// Rekey early by skipping to the next epoch: the receiver derives the epoch from the
		// counter, so it follows without being told.
		ctr = (s.epoch + 1) << bits
		if ctr>>bits != s.epoch+1 { // no epoch left
			return 0, nil, errSealLimit
		}
	}
	if ctr >= rejectAfterMessages {
		return 0, nil, errSealLimit
	}
	if e := ctr >> bits; e != s.epoch {
		// e is always s.epoch+1: counters move one at a time or jump to the next boundary.
		s.aead = rekey(s.aead)
		s.epoch, s.epochBytes, s.epochBegan = e, 0, now
	}
	s.next = ctr + 1
	s.epochBytes += n
	if s.next >= s.cfg.rehandshakeAfter {
		s.rehandshake.Store(true)
	}
	return ctr, s.aead, nil
}

// elapsed is the time since the sender was made.
func (s *sender) elapsed() time.Duration {
	if s.cfg.now != nil {
		return s.cfg.now().Sub(s.born)
	}
	return time.Since(s.born) // one monotonic clock read
}

// needsRehandshake reports whether the counter has passed rehandshakeAfter, so the channel
// should replace its keys with a new handshake while seal still works.
func (s *sender) needsRehandshake() bool { return s.rehandshake.Load() }
