package securechannel

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/flynn/noise"
)

// receiver opens the transport messages of one direction of a channel. It is safe for
// concurrent use.
//
// It holds the keys of the newest authenticated epoch and the one before, so messages
// reordered across a rekey still open, each with its own replay window: the sender may jump
// its counter to the next epoch, and one window spanning the jump would forget the end of the
// old epoch. Keys two epochs old are dropped, for forward secrecy. Later epochs are derived
// on demand, at most maxEpochsAhead ahead, and become current only once a message under them
// authenticated: nothing a forger sends changes any state.
type receiver struct {
	bits uint
	keys atomic.Pointer[receiveKeys] // read without locking by open
	mu   sync.Mutex                  // serialises commits of new epochs
}

// receiveKeys is an immutable snapshot of a receiver's keys; commit replaces it whole.
type receiveKeys struct {
	cur, prev epochKey    // prev.window is nil before the first rekey
	next      cipher.AEAD // key of epoch cur.n+1, derived ahead so crossing a boundary is cheap
}

type epochKey struct {
	n      uint64
	aead   cipher.AEAD
	window *replayWindow
}

// newReceiver returns a receiver keyed by cs, the receiving CipherState of a finished
// handshake, which it takes over: cs must not be used again. Of cfg it uses epochBits and
// initialCounter, which must match the sender's.
func newReceiver(cs *noise.CipherState, cfg rekeyConfig) *receiver {
	cfg = cfg.withDefaults()
	a := takeKey(cs)
	r := &receiver{bits: cfg.epochBits}
	r.keys.Store(&receiveKeys{
		cur:  epochKey{n: cfg.initialCounter >> cfg.epochBits, aead: a, window: new(replayWindow)},
		next: rekey(a),
	})
	return r
}

// window returns the replay window of epoch n, or nil if n's key is not held.
func (k *receiveKeys) window(n uint64) *replayWindow {
	switch {
	case n == k.cur.n:
		return k.cur.window
	case n == k.prev.n:
		return k.prev.window
	}
	return nil
}

// open authenticates and decrypts one transport message in place and returns its plaintext,
// which aliases b[8:len(b)-16]. On error the message is to be dropped (its bytes may have
// been overwritten) and the receiver is as it was.
func (r *receiver) open(b []byte) ([]byte, error) {
	if len(b) < headerLen+tagLen {
		return nil, errOpenShort
	}
	ctr := binary.BigEndian.Uint64(b)
	if ctr >= rejectAfterMessages {
		return nil, errOpenLimit
	}
	e := ctr >> r.bits
	k := r.keys.Load()
	if e > k.cur.n {
		return r.openAhead(k, e, ctr, b)
	}
	var ek epochKey
	switch {
	case e == k.cur.n:
		ek = k.cur
	case e == k.prev.n && k.prev.window != nil:
		ek = k.prev
	default:
		return nil, errOpenReplayed // its key is gone
	}
	pt, err := openInPlace(ek.aead, ctr, b)
	if err != nil {
		return nil, errOpenDecrypt
	}
	if !ek.window.accept(ctr) {
		return nil, errOpenReplayed
	}
	return pt, nil
}

// openAhead opens a message of an epoch e later than the current one k.cur.n, deriving its
// key into locals; only an authentic message makes e current.
func (r *receiver) openAhead(k *receiveKeys, e, ctr uint64, b []byte) ([]byte, error) {
	if e-k.cur.n > maxEpochsAhead {
		return nil, errOpenAhead
	}
	prev, a := k.cur.aead, k.next
	for i := k.cur.n + 1; i < e; i++ {
		prev, a = a, rekey(a)
	}
	pt, err := openInPlace(a, ctr, b)
	if err != nil {
		return nil, errOpenDecrypt
	}
	if w := r.commit(e, a, prev); w == nil || !w.accept(ctr) {
		return nil, errOpenReplayed
	}
	return pt, nil
}

// commit makes epoch e, keyed by a (and e-1 by prev), current unless a concurrent commit got
// there first, and returns e's replay window, or nil if e's key has since been dropped.
func (r *receiver) commit(e uint64, a, prev cipher.AEAD) *replayWindow {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.keys.Load()
	if e > k.cur.n {
		nk := &receiveKeys{cur: epochKey{n: e, aead: a, window: new(replayWindow)}, next: rekey(a)}
		if e == k.cur.n+1 {
			nk.prev = k.cur
		} else {
			// Nothing of epoch e-1 was accepted, or it would be current.
			nk.prev = epochKey{n: e - 1, aead: prev, window: new(replayWindow)}
		}
		r.keys.Store(nk)
		k = nk
	}
	return k.window(e)
}
