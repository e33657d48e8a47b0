package securechannel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/flynn/noise"
)

// FuzzOpen feeds arbitrary bytes to a receiver that has opened some messages: nothing but an
// authentic, unseen message may open, and nothing that fails may change the receiver.
func FuzzOpen(f *testing.F) {
	const epochBits, delivered = 3, 10
	cfg := rekeyConfig{epochBits: epochBits}
	s := newSender(noise.UnsafeNewCipherState(cipherSuite, testKey, 0), cfg)
	var msgs [][]byte // epochs 0 to 4
	authentic := map[string]int{}
	for i := range 40 {
		m := sealCopy(f, s, payload(i, i%7))
		msgs = append(msgs, m)
		authentic[string(m)] = i
		f.Add(m)
		bad := bytes.Clone(m)
		bad[i%len(bad)] ^= 0x80
		f.Add(bad)
		f.Add(m[:len(m)-1])
	}
	f.Add([]byte{})
	f.Add(make([]byte, headerLen+tagLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newReceiver(noise.UnsafeNewCipherState(cipherSuite, testKey, 0), cfg)
		for _, m := range msgs[:delivered] {
			if _, err := openCopy(r, m); err != nil {
				t.Fatal(err)
			}
		}
		before := r.state()
		i, isAuthentic := authentic[string(b)]
		pt, err := r.open(bytes.Clone(b))
		if err != nil {
			if r.state() != before {
				t.Fatalf("open(%x) = %v and changed the receiver", b, err)
			}
			if isAuthentic && i >= delivered {
				t.Fatalf("open(message %d) = %v, want success", i, err)
			}
			return
		}
		if !isAuthentic {
			t.Fatalf("open(%x) = %x, a forgery opened", b, pt)
		}
		if i < delivered {
			t.Fatalf("open(message %d) opened it twice", i)
		}
		if want := payload(i, i%7); !bytes.Equal(pt, want) {
			t.Fatalf("open(message %d) = %x, want %x", i, pt, want)
		}
		if _, err := openCopy(r, b); !errors.Is(err, errReplayed) {
			t.Fatalf("open(message %d) again = %v, want %v", i, err, errReplayed)
		}
	})
}

// FuzzSealOpen round-trips arbitrary plaintexts, after skip earlier messages so that they
// land in later epochs, and checks that no truncation of the message opens or changes the
// receiver.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte(nil), uint8(0))
	f.Add([]byte("hello"), uint8(9))
	f.Add(bytes.Repeat([]byte{0xa5}, 1000), uint8(37))
	f.Fuzz(func(t *testing.T, pt []byte, skip uint8) {
		cfg := rekeyConfig{epochBits: 3}
		s, r := newPair(cfg)
		for range skip % 40 {
			sealCopy(t, s, nil)
		}
		m := sealCopy(t, s, pt)
		if len(m) != headerLen+len(pt)+tagLen {
			t.Fatalf("seal(%d bytes) = %d bytes, want %d", len(pt), len(m), headerLen+len(pt)+tagLen)
		}
		before := r.state()
		for n := range len(m) {
			if n > 64 && n < len(m)-tagLen-1 && n%61 != 0 {
				continue // enough cuts: every short one, those near the tag, a sample between
			}
			if _, err := openCopy(r, m[:n]); err == nil || r.state() != before {
				t.Fatalf("open(first %d of %d bytes) = %v, changed: %v", n, len(m), err, r.state() != before)
			}
		}
		got, err := openCopy(r, m)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open(seal(%x)) = %x, %v", pt, got, err)
		}
		if _, err := openCopy(r, m); !errors.Is(err, errReplayed) {
			t.Fatalf("open again = %v, want %v", err, errReplayed)
		}
	})
}

// FuzzReplayWindow runs arbitrary counter sequences through the window and the naive model.
// Each 3-byte op is a kind byte and a 16-bit distance from the highest counter accepted.
func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 1, 1, 0, 1, 2, 0x1f, 0xc0})
	f.Add([]byte{2, 0xff, 0xff, 1, 0x1f, 0xc0, 1, 0x1f, 0xc1, 3, 0, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var w replayWindow
		m := modelWindow{seen: map[uint64]bool{}}
		for ; len(ops) >= 3; ops = ops[3:] {
			d := uint64(binary.BigEndian.Uint16(ops[1:]))
			var ctr uint64
			switch ops[0] % 4 {
			case 0, 3:
				ctr = m.max + d
			case 1:
				ctr = m.max - min(d, m.max)
			case 2:
				ctr = m.max + d<<8 // jumps past the window
			}
			if got, want := w.accept(ctr), m.accept(ctr); got != want {
				t.Fatalf("accept(%d) = %v, want %v (highest %d)", ctr, got, want, m.max)
			}
		}
	})
}
