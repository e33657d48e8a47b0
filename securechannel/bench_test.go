package securechannel

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
)

var benchSizes = []int{1 << 10, 16 << 10, 64 << 10}

// bareGCM is plain AES-256-GCM from the standard library, the ceiling the channel is
// measured against in the same run.
func bareGCM(b *testing.B) cipher.AEAD {
	block, err := aes.NewCipher(testKey[:])
	if err != nil {
		b.Fatal(err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkSeal(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s, _ := newPair(rekeyConfig{})
			buf := make([]byte, headerLen+size+tagLen)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.seal(buf[:headerLen+size]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAESGCM seals in place with bare AES-256-GCM, the baseline of BenchmarkSeal.
func BenchmarkAESGCM(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			a := bareGCM(b)
			buf := make([]byte, size+tagLen)
			var nonce [nonceLen]byte
			var ctr uint64
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				binary.BigEndian.PutUint64(nonce[4:], ctr)
				ctr++
				a.Seal(buf[:0], nonce[:], buf[:size], nil)
			}
		})
	}
}

// forget empties the window in O(1) (Filter.Reset), so a benchmark can open the same low
// counter again.
func (w *replayWindow) forget() {
	w.mu.Lock()
	w.f.Reset()
	w.mu.Unlock()
}

// BenchmarkOpen opens a fresh copy of one message each time (opening decrypts in place),
// forgetting its counter in between; BenchmarkAESGCMOpen pays the same copy.
func BenchmarkOpen(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s, r := newPair(rekeyConfig{})
			sealCopy(b, s, nil) // counter 0
			msg := sealCopy(b, s, make([]byte, size))
			w := r.keys.Load().cur.window
			buf := make([]byte, len(msg))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(buf, msg)
				w.forget()
				if _, err := r.open(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAESGCMOpen opens in place with bare AES-256-GCM, the baseline of BenchmarkOpen.
func BenchmarkAESGCMOpen(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			a := bareGCM(b)
			var nonce [nonceLen]byte
			msg := a.Seal(nil, nonce[:], make([]byte, size), nil)
			buf := make([]byte, len(msg))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(buf, msg)
				if _, err := a.Open(buf[:0], nonce[:], buf, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSealParallel seals from every P through one sender, as many sessions sharing a
// channel do; BenchmarkAESGCMParallel is the same without the shared counter.
func BenchmarkSealParallel(b *testing.B) {
	const size = 16 << 10
	b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
		s, _ := newPair(rekeyConfig{})
		b.ReportAllocs()
		b.SetBytes(size)
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, headerLen+size+tagLen)
			for pb.Next() {
				if _, err := s.seal(buf[:headerLen+size]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkAESGCMParallel(b *testing.B) {
	const size = 16 << 10
	b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
		a := bareGCM(b)
		var ctr atomic.Uint64
		b.ReportAllocs()
		b.SetBytes(size)
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, size+tagLen)
			var nonce [nonceLen]byte
			for pb.Next() {
				binary.BigEndian.PutUint64(nonce[4:], ctr.Add(1))
				a.Seal(buf[:0], nonce[:], buf[:size], nil)
			}
		})
	})
}
