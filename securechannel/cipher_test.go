package securechannel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"
	"golang.zx2c4.com/wireguard/replay"

	"github.com/adjacentnet/adjacent/internal/racecheck"
)

var testKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// newPair returns a sender and a receiver of one direction keyed alike, as after a handshake.
func newPair(cfg rekeyConfig) (*sender, *receiver) {
	return newSender(noise.UnsafeNewCipherState(cipherSuite, testKey, 0), cfg),
		newReceiver(noise.UnsafeNewCipherState(cipherSuite, testKey, 0), cfg)
}

// sealCopy seals pt in a fresh buffer and returns the transport message.
func sealCopy(t testing.TB, s *sender, pt []byte) []byte {
	t.Helper()
	b := make([]byte, headerLen+len(pt), headerLen+len(pt)+tagLen)
	copy(b[headerLen:], pt)
	msg, err := s.seal(b)
	if err != nil {
		t.Fatalf("seal(%d bytes): %v", len(pt), err)
	}
	return msg
}

// openCopy opens a copy of msg, leaving msg intact for replays.
func openCopy(r *receiver, msg []byte) ([]byte, error) {
	pt, err := r.open(bytes.Clone(msg))
	return bytes.Clone(pt), err
}

func counterOf(msg []byte) uint64 { return binary.BigEndian.Uint64(msg) }

// receiverState is everything open may change, comparable with ==.
type receiverState struct {
	keys      *receiveKeys
	cur, prev windowState
}

type windowState = replay.Filter

func (w *replayWindow) state() windowState {
	if w == nil {
		return windowState{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f
}

func (r *receiver) state() receiverState {
	k := r.keys.Load()
	return receiverState{k, k.cur.window.state(), k.prev.window.state()}
}

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func payload(i int, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return binary.BigEndian.AppendUint32(b, uint32(i))
}

// TestSealOpenRekeys seals across many rekeys, by messages, bytes and time, and opens
// everything in order and reordered across epoch boundaries, losing nothing.
func TestSealOpenRekeys(t *testing.T) {
	const msgs = 1000
	tests := []struct {
		name       string
		cfg        rekeyConfig
		size       func(rng *rand.Rand) int
		tick       time.Duration // clock advance per message
		wantEpochs uint64        // at least
	}{
		{"messages", rekeyConfig{epochBits: 4}, func(rng *rand.Rand) int { return rng.IntN(300) }, 0, msgs / 16},
		{"bytes", rekeyConfig{afterBytes: 1000}, func(rng *rand.Rand) int { return 100 + rng.IntN(200) }, 0, msgs / 10},
		{"time", rekeyConfig{afterTime: time.Minute}, func(rng *rand.Rand) int { return rng.IntN(300) }, 15 * time.Second, msgs / 5},
		{"all", rekeyConfig{epochBits: 3, afterBytes: 700, afterTime: time.Minute}, func(rng *rand.Rand) int { return rng.IntN(300) }, 15 * time.Second, msgs / 8},
	}
	for _, tt := range tests {
		for _, reorder := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/reorder=%v", tt.name, reorder), func(t *testing.T) {
				clock := newFakeClock()
				cfg := tt.cfg
				cfg.now = clock.now
				s, r := newPair(cfg)
				rng := rand.New(rand.NewPCG(5, 6))
				var sent, pts [][]byte
				for i := range msgs {
					pt := payload(i, tt.size(rng))
					sent = append(sent, sealCopy(t, s, pt))
					pts = append(pts, pt)
					clock.advance(tt.tick)
				}
				if s.epoch < tt.wantEpochs {
					t.Fatalf("sender made %d epochs, want at least %d", s.epoch, tt.wantEpochs)
				}
				order := make([]int, msgs)
				for i := range order {
					order[i] = i
				}
				if reorder {
					// Reverse every run of three, so the first message of an epoch often
					// arrives before the last ones of the epoch before.
					for i := 0; i+3 <= msgs; i += 3 {
						slices.Reverse(order[i : i+3])
					}
				}
				crossed := 0
				var lastEpoch uint64
				for j, i := range order {
					e := counterOf(sent[i]) >> r.bits
					if j > 0 && e < lastEpoch {
						crossed++
					}
					lastEpoch = e
					got, err := openCopy(r, sent[i])
					if err != nil {
						t.Fatalf("open message %d (counter %d, epoch %d, receiver at %d): %v", i, counterOf(sent[i]), e, r.keys.Load().cur.n, err)
					}
					if !bytes.Equal(got, pts[i]) {
						t.Fatalf("open message %d = %x, want %x", i, got, pts[i])
					}
				}
				if reorder && crossed == 0 {
					t.Fatal("no message arrived after one of a later epoch")
				}
				if got := r.keys.Load().cur.n; got != s.epoch {
					t.Errorf("receiver epoch = %d, want the sender's %d", got, s.epoch)
				}
			})
		}
	}
}

// TestSealRekeyRealClock rekeys on the default monotonic clock: with a 1ns key lifetime every
// message starts an epoch.
func TestSealRekeyRealClock(t *testing.T) {
	s, r := newPair(rekeyConfig{afterTime: time.Nanosecond})
	for i := range 5 {
		time.Sleep(time.Microsecond)
		m := sealCopy(t, s, payload(i, 3))
		if got, want := counterOf(m), uint64(i+1)<<defaultEpochBits; got != want {
			t.Fatalf("message %d counter = %d, want %d", i, got, want)
		}
		if _, err := openCopy(r, m); err != nil {
			t.Fatalf("open message %d: %v", i, err)
		}
	}
}

// TestSealMatchesNoise checks sealed messages byte for byte against flynn/noise's own
// CipherState, REKEYed once per epoch.
func TestSealMatchesNoise(t *testing.T) {
	s, r := newPair(rekeyConfig{epochBits: 1})
	ref := noise.UnsafeNewCipherState(cipherSuite, testKey, 0)
	for ctr := range uint64(8) {
		if ctr > 0 && ctr%2 == 0 {
			ref.Rekey()
		}
		pt := payload(int(ctr), 33)
		msg := sealCopy(t, s, pt)
		ref.SetNonce(ctr)
		want, err := ref.Encrypt(binary.BigEndian.AppendUint64(nil, ctr), nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(msg, want) {
			t.Fatalf("message %d = %x, want %x", ctr, msg, want)
		}
		if got, err := openCopy(r, msg); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open message %d = %x, %v, want %x", ctr, got, err, pt)
		}
	}
}

// TestOpenBitFlips flips every bit of a message of the current epoch and of one starting the
// next: each must fail and change nothing, and the genuine messages still open.
func TestOpenBitFlips(t *testing.T) {
	s, r := newPair(rekeyConfig{epochBits: 3})
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, sealCopy(t, s, payload(i, 20)))
	}
	for i := range 5 {
		if _, err := openCopy(r, msgs[i]); err != nil {
			t.Fatalf("open message %d: %v", i, err)
		}
	}
	for _, i := range []int{6, 8} { // epoch 0, then the first of epoch 1
		before := r.state()
		for bit := range len(msgs[i]) * 8 {
			m := bytes.Clone(msgs[i])
			m[bit/8] ^= 1 << (bit % 8)
			if pt, err := r.open(m); err == nil {
				t.Fatalf("message %d with bit %d flipped opened to %x", i, bit, pt)
			}
			if r.state() != before {
				t.Fatalf("message %d with bit %d flipped changed the receiver", i, bit)
			}
		}
		if _, err := openCopy(r, msgs[i]); err != nil {
			t.Fatalf("open message %d after its forgeries: %v", i, err)
		}
	}
	for _, i := range []int{5, 7, 9} {
		if _, err := openCopy(r, msgs[i]); err != nil {
			t.Fatalf("open message %d after forgeries: %v", i, err)
		}
	}
}

func TestOpenReplayed(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		s, r := newPair(rekeyConfig{})
		m := sealCopy(t, s, []byte("once"))
		if _, err := openCopy(r, m); err != nil {
			t.Fatal(err)
		}
		before := r.state()
		if _, err := openCopy(r, m); !errors.Is(err, errReplayed) {
			t.Fatalf("open(replay) = %v, want %v", err, errReplayed)
		}
		if r.state() != before {
			t.Fatal("replay changed the receiver")
		}
	})
	t.Run("older than the window", func(t *testing.T) {
		s, r := newPair(rekeyConfig{})
		var msgs [][]byte
		for i := range windowSize + 2 {
			msgs = append(msgs, sealCopy(t, s, payload(i, 0)))
		}
		if _, err := openCopy(r, msgs[windowSize+1]); err != nil {
			t.Fatal(err)
		}
		if _, err := openCopy(r, msgs[0]); !errors.Is(err, errReplayed) {
			t.Fatalf("open(counter %d behind) = %v, want %v", windowSize+1, err, errReplayed)
		}
		if _, err := openCopy(r, msgs[1]); err != nil {
			t.Fatalf("open(counter %d behind) = %v, want success", windowSize, err)
		}
	})
	t.Run("key dropped", func(t *testing.T) {
		s, r := newPair(rekeyConfig{epochBits: 2})
		var msgs [][]byte
		for i := range 12 { // epochs 0, 1, 2
			msgs = append(msgs, sealCopy(t, s, payload(i, 0)))
		}
		if _, err := openCopy(r, msgs[8]); err != nil {
			t.Fatal(err)
		}
		if _, err := openCopy(r, msgs[3]); !errors.Is(err, errReplayed) {
			t.Fatalf("open(epoch 0 after epoch 2) = %v, want %v", err, errReplayed)
		}
		if _, err := openCopy(r, msgs[4]); err != nil {
			t.Fatalf("open(epoch 1 after epoch 2) = %v, want success", err)
		}
	})
}

func TestOpenTruncated(t *testing.T) {
	s, r := newPair(rekeyConfig{})
	m := sealCopy(t, s, []byte("a message to cut short"))
	before := r.state()
	for n := range len(m) {
		_, err := openCopy(r, m[:n])
		if err == nil {
			t.Fatalf("open(first %d bytes) succeeded", n)
		}
		if n < headerLen+tagLen && !errors.Is(err, errShort) {
			t.Fatalf("open(first %d bytes) = %v, want %v", n, err, errShort)
		}
		if r.state() != before {
			t.Fatalf("open(first %d bytes) changed the receiver", n)
		}
	}
	if _, err := openCopy(r, m); err != nil {
		t.Fatal(err)
	}
}

// TestOpenEpochsAhead: a receiver derives up to maxEpochsAhead epochs for a message, keeps
// the one before, and refuses further without changing anything.
func TestOpenEpochsAhead(t *testing.T) {
	s, r := newPair(rekeyConfig{epochBits: 2})
	var msgs [][]byte
	for i := range 4 * (maxEpochsAhead + 2) {
		msgs = append(msgs, sealCopy(t, s, payload(i, 5)))
	}
	far := msgs[4*(maxEpochsAhead+1)]
	before := r.state()
	if _, err := openCopy(r, far); !errors.Is(err, errEpochAhead) {
		t.Fatalf("open(%d epochs ahead) = %v, want %v", maxEpochsAhead+1, err, errEpochAhead)
	}
	if r.state() != before {
		t.Fatal("a message too far ahead changed the receiver")
	}
	if _, err := openCopy(r, msgs[4*maxEpochsAhead+1]); err != nil {
		t.Fatalf("open(%d epochs ahead) = %v", maxEpochsAhead, err)
	}
	if _, err := openCopy(r, msgs[4*maxEpochsAhead-1]); err != nil {
		t.Fatalf("open(the epoch before, never seen) = %v", err)
	}
	if _, err := openCopy(r, msgs[4*maxEpochsAhead-5]); !errors.Is(err, errReplayed) {
		t.Fatalf("open(two epochs back) = %v, want %v", err, errReplayed)
	}
	if _, err := openCopy(r, far); err != nil {
		t.Fatalf("open(next epoch) = %v", err)
	}
}

func TestSealLimits(t *testing.T) {
	if defaultRehandshakeAfterMessages >= rejectAfterMessages/2 {
		t.Fatalf("rehandshake at %d leaves too little before the reject limit %d", uint64(defaultRehandshakeAfterMessages), uint64(rejectAfterMessages))
	}
	t.Run("rehandshake before reject", func(t *testing.T) {
		cfg := rekeyConfig{initialCounter: defaultRehandshakeAfterMessages - 2}
		s, r := newPair(cfg)
		for i, want := range []bool{false, true, true} {
			m := sealCopy(t, s, payload(i, 10))
			if got := s.needsRehandshake(); got != want {
				t.Fatalf("after counter %d: needsRehandshake() = %v, want %v", counterOf(m), got, want)
			}
			if _, err := openCopy(r, m); err != nil {
				t.Fatalf("open(counter %d): %v", counterOf(m), err)
			}
		}
	})
	t.Run("reject", func(t *testing.T) {
		cfg := rekeyConfig{initialCounter: rejectAfterMessages - 2}
		s, r := newPair(cfg)
		if !s.needsRehandshake() {
			t.Fatal("needsRehandshake() = false near the reject limit")
		}
		for range 2 {
			m := sealCopy(t, s, []byte("last"))
			if _, err := openCopy(r, m); err != nil {
				t.Fatalf("open(counter %d): %v", counterOf(m), err)
			}
		}
		for range 2 {
			b := make([]byte, headerLen+4, headerLen+4+tagLen)
			if _, err := s.seal(b); !errors.Is(err, errRejectLimit) {
				t.Fatalf("seal at the limit = %v, want %v", err, errRejectLimit)
			}
		}
		forged := binary.BigEndian.AppendUint64(nil, rejectAfterMessages)
		forged = append(forged, make([]byte, tagLen)...)
		if _, err := r.open(forged); !errors.Is(err, errRejectLimit) {
			t.Fatalf("open(counter at the limit) = %v, want %v", err, errRejectLimit)
		}
	})
	t.Run("no epoch to jump to", func(t *testing.T) {
		clock := newFakeClock()
		s, _ := newPair(rekeyConfig{initialCounter: rejectAfterMessages - 100, now: clock.now})
		sealCopy(t, s, nil)
		clock.advance(defaultRekeyAfterTime)
		b := make([]byte, headerLen, headerLen+tagLen)
		if _, err := s.seal(b); !errors.Is(err, errRejectLimit) {
			t.Fatalf("seal needing a rekey in the last epoch = %v, want %v", err, errRejectLimit)
		}
	})
}

func TestSealBuffer(t *testing.T) {
	s, _ := newPair(rekeyConfig{})
	for _, b := range [][]byte{make([]byte, 7, 100), make([]byte, 20, 35)} {
		if _, err := s.seal(b); !errors.Is(err, errBuffer) {
			t.Errorf("seal(len %d, cap %d) = %v, want %v", len(b), cap(b), err, errBuffer)
		}
	}
}

// TestRekeyMatchesNoise checks REKEY against flynn/noise's CipherState.Rekey.
func TestRekeyMatchesNoise(t *testing.T) {
	k := testKey
	a := newAEAD(&k)
	ref := noise.UnsafeNewCipherState(cipherSuite, testKey, 0)
	for i := range 3 {
		a = rekey(a)
		ref.Rekey()
		ref.SetNonce(42)
		want, _ := ref.Encrypt(nil, nil, []byte("rekeyed"))
		var nonce [nonceLen]byte
		binary.BigEndian.PutUint64(nonce[4:], 42)
		if got := a.Seal(nil, nonce[:], []byte("rekeyed"), nil); !bytes.Equal(got, want) {
			t.Fatalf("after %d rekeys: %x, want %x", i+1, got, want)
		}
	}
}

// TestSealOpenConcurrent seals from several goroutines across epochs, then opens everything
// from several goroutines, in counter order a chunk at a time.
func TestSealOpenConcurrent(t *testing.T) {
	const workers, each = 8, 500
	s, r := newPair(rekeyConfig{epochBits: 6})
	sent := make([][][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				b := make([]byte, headerLen+8, headerLen+8+tagLen)
				binary.BigEndian.PutUint32(b[headerLen:], uint32(w))
				binary.BigEndian.PutUint32(b[headerLen+4:], uint32(i))
				m, err := s.seal(b)
				if err != nil {
					t.Error(err)
					return
				}
				sent[w] = append(sent[w], m)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(sent...)
	slices.SortFunc(all, func(a, b []byte) int { return bytes.Compare(a[:headerLen], b[:headerLen]) })
	for i, m := range all {
		if counterOf(m) != uint64(i) {
			t.Fatalf("counters are not 0..%d: position %d holds %d", len(all)-1, i, counterOf(m))
		}
	}
	seen := make([][]bool, workers)
	for w := range seen {
		seen[w] = make([]bool, each)
	}
	const chunk = 16 // within one window and at most two epochs
	for lo := 0; lo < len(all); lo += chunk {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := lo + w; i < min(lo+chunk, len(all)); i += 4 {
					pt, err := r.open(all[i])
					if err != nil {
						t.Errorf("open(counter %d): %v", i, err)
						return
					}
					mu.Lock()
					seen[binary.BigEndian.Uint32(pt)][binary.BigEndian.Uint32(pt[4:])] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	for w := range seen {
		for i, ok := range seen[w] {
			if !ok {
				t.Fatalf("message %d of sealer %d never opened", i, w)
			}
		}
	}
}

// TestZeroAllocs pins the hot path at no allocations per message.
func TestZeroAllocs(t *testing.T) {
	if racecheck.Enabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	const runs, size = 1000, 1024
	s, r := newPair(rekeyConfig{})
	b := make([]byte, headerLen+size+tagLen)
	if n := testing.AllocsPerRun(runs, func() {
		if _, err := s.seal(b[:headerLen+size]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("seal: %v allocations per message, want 0", n)
	}

	s, r = newPair(rekeyConfig{})
	msgs := make([][]byte, runs+1)
	for i := range msgs {
		msgs[i] = sealCopy(t, s, make([]byte, size))
	}
	i := 0
	if n := testing.AllocsPerRun(runs, func() {
		if _, err := r.open(msgs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Errorf("open: %v allocations per message, want 0", n)
	}
	forged := sealCopy(t, s, make([]byte, size))
	forged[len(forged)-1] ^= 1
	if n := testing.AllocsPerRun(runs, func() {
		if _, err := r.open(forged); err == nil {
			t.Fatal("forged message opened")
		}
	}); n != 0 {
		t.Errorf("open(forged): %v allocations per message, want 0", n)
	}
}
