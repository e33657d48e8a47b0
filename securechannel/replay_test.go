package securechannel

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

type windowOp struct {
	ctr  uint64
	want bool
}

// ring is the span of counters wireguard-go's filter keeps bits for: 128 blocks of 64.
const ring = 128 * 64

func TestReplayWindow(t *testing.T) {
	a := func(ctr uint64, want bool) windowOp { return windowOp{ctr, want} }
	tests := []struct {
		name string
		ops  []windowOp
	}{
		{"zero once", []windowOp{a(0, true), a(0, false)}},
		{"in order", []windowOp{a(0, true), a(1, true), a(2, true), a(3, true), a(2, false)}},
		{"reordered", []windowOp{a(10, true), a(7, true), a(9, true), a(8, true), a(7, false), a(10, false), a(11, true)}},
		{"oldest in window", []windowOp{a(windowSize+100, true), a(100, true), a(100, false)}},
		{"just past window", []windowOp{a(windowSize+100, true), a(99, false)}},
		{"jump clears ring", []windowOp{a(1, true), a(1+ring, true), a(1, false), a(2+ring, true)}},
		{"jump by exactly the ring", []windowOp{a(64, true), a(64+ring, true), a(64, false), a(65+ring-64, true)}},
		{"huge jump", []windowOp{a(3, true), a(1<<62, true), a(1<<62-windowSize, true), a(1<<62-windowSize-1, false), a(3, false)}},
		{"block boundaries", []windowOp{a(63, true), a(64, true), a(127, true), a(128, true), a(63, false), a(64, false), a(65, true)}},
		{"near limit", []windowOp{a(rejectAfterMessages-1, true), a(rejectAfterMessages-1-windowSize, true), a(rejectAfterMessages-1, false)}},
		{"at limit", []windowOp{a(rejectAfterMessages, false), a(rejectAfterMessages-1, true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w replayWindow
			for i, op := range tt.ops {
				if got := w.accept(op.ctr); got != op.want {
					t.Fatalf("op %d: accept(%d) = %v, want %v", i, op.ctr, got, op.want)
				}
			}
		})
	}
}

// modelWindow is the naive replay window: a set of every counter accepted, and the rule that
// a counter more than windowSize behind the highest is too old.
type modelWindow struct {
	max  uint64
	seen map[uint64]bool
}

func (m *modelWindow) check(ctr uint64) bool {
	return !m.seen[ctr] && (ctr > m.max || m.max-ctr <= windowSize)
}

func (m *modelWindow) accept(ctr uint64) bool {
	if !m.check(ctr) {
		return false
	}
	m.seen[ctr] = true
	m.max = max(m.max, ctr)
	return true
}

// prune forgets counters the age rule rejects anyway, to keep the model small.
func (m *modelWindow) prune() {
	for c := range m.seen {
		if m.max-c > windowSize {
			delete(m.seen, c)
		}
	}
}

// nextCounter draws a counter of a random kind relative to the highest accepted one.
func nextCounter(rng *rand.Rand, top uint64, recent []uint64) uint64 {
	back := func(d uint64) uint64 {
		if d > top {
			return 0
		}
		return top - d
	}
	switch k := rng.IntN(100); {
	case k < 30: // in order
		return top + 1
	case k < 55: // reordered within the window
		return back(rng.Uint64N(windowSize + 1))
	case k < 65: // duplicate
		return recent[rng.IntN(len(recent))]
	case k < 72: // just ahead
		return top + 1 + rng.Uint64N(200)
	case k < 77: // past the whole window
		return top + windowSize + 1 + rng.Uint64N(3*windowSize)
	case k < 80: // far ahead
		return top + rng.Uint64N(1<<24)
	case k < 90: // at the edge of the window
		return back(windowSize - 2 + rng.Uint64N(5))
	default: // very old
		return back(windowSize + 1 + rng.Uint64N(1<<20))
	}
}

// TestReplayWindowModel drives the window and the naive model with the same million
// operations and requires the same answers. It also pins windowSize: a filter wider or
// narrower than the constant says would answer differently at the window's edge.
func TestReplayWindowModel(t *testing.T) {
	ops := 1_000_000
	if testing.Short() {
		ops = 100_000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var w replayWindow
	m := modelWindow{seen: map[uint64]bool{}}
	recent := make([]uint64, 64)
	for i := range ops {
		ctr := nextCounter(rng, m.max, recent)
		got, want := w.accept(ctr), m.accept(ctr)
		if got != want {
			t.Fatalf("op %d: accept(%d) = %v, want %v (highest %d)", i, ctr, got, want, m.max)
		}
		if want {
			recent[i%len(recent)] = ctr
		}
		if i%4096 == 0 {
			m.prune()
		}
	}
}

// TestReplayWindowConcurrent offers the same counters from several goroutines: each must be
// accepted exactly once. Every goroutine walks the same order, shuffled within 64-counter
// blocks, so whichever offers a counter first finds it inside the window.
func TestReplayWindowConcurrent(t *testing.T) {
	const n, workers = 20_000, 8
	rng := rand.New(rand.NewPCG(3, 4))
	order := make([]uint64, n)
	for i := range order {
		order[i] = uint64(i)
	}
	for i := 0; i < n; i += 64 {
		blk := order[i:min(i+64, n)]
		rng.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
	}
	var w replayWindow
	accepted := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for _, c := range order {
				if w.accept(c) {
					accepted[c].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for c := range accepted {
		if got := accepted[c].Load(); got != 1 {
			t.Errorf("counter %d accepted %d times, want 1", c, got)
		}
	}
}
