package securechannel

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

type windowOp struct {
	accept bool // accept, or else check
	ctr    uint64
	want   bool
}

func TestReplayWindow(t *testing.T) {
	c := func(ctr uint64, want bool) windowOp { return windowOp{false, ctr, want} }
	a := func(ctr uint64, want bool) windowOp { return windowOp{true, ctr, want} }
	tests := []struct {
		name string
		ops  []windowOp
	}{
		{"zero once", []windowOp{c(0, true), a(0, true), c(0, false), a(0, false)}},
		{"in order", []windowOp{a(0, true), a(1, true), a(2, true), a(3, true), a(2, false)}},
		{"check changes nothing", []windowOp{c(5, true), c(5, true), c(4, true), a(5, true), c(4, true), c(5, false)}},
		{"reordered", []windowOp{a(10, true), a(7, true), a(9, true), a(8, true), a(7, false), a(10, false), a(11, true)}},
		{"oldest in window", []windowOp{a(windowSize+100, true), a(100, true), a(100, false)}},
		{"just past window", []windowOp{a(windowSize+100, true), c(99, false), a(99, false)}},
		{"jump clears ring", []windowOp{a(1, true), a(1+ringBlocks*blockBits, true), a(1, false), a(2+ringBlocks*blockBits, true)}},
		{"jump by exactly the ring", []windowOp{a(64, true), a(64+ringBlocks*blockBits, true), c(64, false), c(65+(ringBlocks-1)*blockBits, true)}},
		{"huge jump", []windowOp{a(3, true), a(1<<62, true), a(1<<62-windowSize, true), a(1<<62-windowSize-1, false), a(3, false)}},
		{"block boundaries", []windowOp{a(63, true), a(64, true), a(127, true), a(128, true), a(63, false), a(64, false), a(65, true)}},
		{"near limit", []windowOp{a(rejectAfterMessages-1, true), a(rejectAfterMessages-1-windowSize, true), a(rejectAfterMessages-1, false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w replayWindow
			for i, op := range tt.ops {
				name, f := "check", w.check
				if op.accept {
					name, f = "accept", w.accept
				}
				if got := f(op.ctr); got != op.want {
					t.Fatalf("op %d: %s(%d) = %v, want %v", i, name, op.ctr, got, op.want)
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
// operations and requires the same answers.
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
		if got, want := w.check(ctr), m.check(ctr); got != want {
			t.Fatalf("op %d: check(%d) = %v, want %v (highest %d)", i, ctr, got, want, m.max)
		}
		if rng.IntN(4) == 0 {
			continue // check alone must change nothing
		}
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
	for i := 0; i < n; i += blockBits {
		blk := order[i:min(i+blockBits, n)]
		rng.Shuffle(len(blk), func(a, b int) { blk[a], blk[b] = blk[b], blk[a] })
	}
	var w replayWindow
	accepted := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for _, c := range order {
				if w.check(c) && w.accept(c) {
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
