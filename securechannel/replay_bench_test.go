package securechannel

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/replay"
)

// wgWindow is wireguard-go's replay.Filter behind a mutex, used as securechannel uses a
// window: one check-and-set after the message authenticated.
type wgWindow struct {
	mu sync.Mutex
	f  replay.Filter
}

func (w *wgWindow) accept(ctr uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.ValidateCounter(ctr, rejectAfterMessages)
}

// replayCounters returns n counters of one kind of traffic.
func replayCounters(kind string, n int) []uint64 {
	rng := rand.New(rand.NewPCG(5, 6))
	c := make([]uint64, n)
	for i := range c {
		c[i] = uint64(i)
	}
	switch kind {
	case "reordered": // shuffled within blocks of 256, as concurrent senders do
		for i := 0; i < n; i += 256 {
			b := c[i:min(i+256, n)]
			rng.Shuffle(len(b), func(x, y int) { b[x], b[y] = b[y], b[x] })
		}
	case "replayed": // every counter twice, the copy 100 behind
		for i := range c {
			c[i] = uint64(i / 2)
			if i%2 == 1 && i > 200 {
				c[i] = uint64(i/2 - 100)
			}
		}
	}
	return c
}

// BenchmarkReplayWindow compares this package's window (check before decrypting, accept
// after) with wireguard-go's Filter (one check-and-set after decrypting) on the same
// counters: in order, reordered and replayed.
func BenchmarkReplayWindow(b *testing.B) {
	for _, kind := range []string{"inorder", "reordered", "replayed"} {
		ctrs := replayCounters(kind, 1<<16)
		b.Run(fmt.Sprintf("impl=ours/traffic=%s", kind), func(b *testing.B) {
			b.ReportAllocs()
			var w replayWindow
			var base uint64
			i := 0
			for b.Loop() {
				c := base + ctrs[i]
				if w.check(c) {
					w.accept(c)
				}
				if i++; i == len(ctrs) {
					i, base = 0, base+1<<20
				}
			}
		})
		b.Run(fmt.Sprintf("impl=wireguard/traffic=%s", kind), func(b *testing.B) {
			b.ReportAllocs()
			var w wgWindow
			var base uint64
			i := 0
			for b.Loop() {
				w.accept(base + ctrs[i])
				if i++; i == len(ctrs) {
					i, base = 0, base+1<<20
				}
			}
		})
	}
}
