package impair

import (
	"container/heap"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func testShaper(t *testing.T, imp Impairment) *shaper {
	t.Helper()
	imp, err := imp.withDefaults(DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	return newShaper(imp, [32]byte{7})
}

// TestShaperOff: the zero Impairment passes every packet at once and draws no randomness.
func TestShaperOff(t *testing.T) {
	s := testShaper(t, Impairment{})
	for i := range 1000 {
		now := time.Duration(i) * time.Microsecond
		if v := s.admit(now, 1500); v.lost || v.duplicated || v.copies != 1 || v.due[0] != now || v.overflowed != 0 {
			t.Fatalf("admit(%v) = %+v, want one copy due at once", now, v)
		}
	}
	if got, want := s.rng.Uint64(), rand.New(rand.NewChaCha8([32]byte{7})).Uint64(); got != want {
		t.Errorf("the generator moved: next value %x, want %x", got, want)
	}
}

// TestShaperDelay: 50 ms ± 10 ms spreads the delays over 40..60 ms, around 50 ms.
func TestShaperDelay(t *testing.T) {
	s := testShaper(t, Impairment{Delay: 50 * ms, Jitter: 10 * ms})
	const n = 10000
	var sum time.Duration
	var low, high int
	for i := range n {
		now := time.Duration(i) * ms
		v := s.admit(now, 100)
		d := v.due[0] - now
		if v.copies != 1 || d < 40*ms || d > 60*ms {
			t.Fatalf("admit(%v) = %+v: delay %v, want one copy delayed 40..60ms", now, v, d)
		}
		sum += d
		if d < 45*ms {
			low++
		}
		if d > 55*ms {
			high++
		}
	}
	if mean := sum / n; mean < 49*ms || mean > 51*ms {
		t.Errorf("mean delay %v, want 50ms ± 1ms", mean)
	}
	if low < n/5 || high < n/5 {
		t.Errorf("%d delays under 45ms and %d over 55ms of %d, want about a quarter each", low, high, n)
	}
}

// TestShaperProbabilities: loss, duplication and reordering happen at their probabilities.
func TestShaperProbabilities(t *testing.T) {
	const n = 20000
	for _, tc := range []struct {
		name string
		imp  Impairment
		hit  func(v verdict, now time.Duration) bool
		p    float64
	}{
		{"loss", Impairment{Loss: 0.3}, func(v verdict, _ time.Duration) bool { return v.lost && v.copies == 0 }, 0.3},
		{"duplicate", Impairment{Duplicate: 0.1}, func(v verdict, _ time.Duration) bool { return v.duplicated && v.copies == 2 }, 0.1},
		{"reorder", Impairment{Delay: 10 * ms, Reorder: 0.2}, func(v verdict, now time.Duration) bool { return v.due[0] == now+20*ms }, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testShaper(t, tc.imp)
			hits := 0
			for i := range n {
				now := time.Duration(i) * ms
				if tc.hit(s.admit(now, 100), now) {
					hits++
				}
			}
			if got := float64(hits) / n; got < tc.p-0.02 || got > tc.p+0.02 {
				t.Errorf("%d of %d packets hit, %.3f, want %.2f ± 0.02", hits, n, got, tc.p)
			}
		})
	}
}

// TestShaperRate: at 1 Mbit/s a 1250-byte packet takes 10 ms; packets leave the bucket
// spaced by that, after a burst of Burst bytes; with the default bucket of 1500 bytes the
// 250 bytes to spare let the second leave 2 ms early.
func TestShaperRate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		burst  int
		at     []time.Duration // arrivals
		depart []time.Duration
	}{
		{"one-packet-bucket", 1250,
			[]time.Duration{0, 0, 0, 0, 0, 100 * ms},
			[]time.Duration{0, 10 * ms, 20 * ms, 30 * ms, 40 * ms, 100 * ms}},
		{"spaced-arrivals-pass", 1250,
			[]time.Duration{0, 10 * ms, 25 * ms, 26 * ms},
			[]time.Duration{0, 10 * ms, 25 * ms, 35 * ms}},
		{"default-bucket", 0,
			[]time.Duration{0, 0, 0},
			[]time.Duration{0, 8 * ms, 18 * ms}},
		{"burst-of-three", 3750,
			[]time.Duration{0, 0, 0, 0, 0},
			[]time.Duration{0, 0, 0, 10 * ms, 20 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testShaper(t, Impairment{Rate: 1_000_000, Burst: tc.burst})
			for i, now := range tc.at {
				if v := s.admit(now, 1250); v.copies != 1 || v.due[0] != tc.depart[i] {
					t.Errorf("packet %d at %v: %+v, want one copy leaving at %v", i, now, v, tc.depart[i])
				}
			}
		})
	}
}

// TestShaperQueue: beyond Queue packets waiting for the rate, packets are dropped, and
// room comes back as the queue drains.
func TestShaperQueue(t *testing.T) {
	s := testShaper(t, Impairment{Rate: 1_000_000, Burst: 1250, Queue: 3})
	var left []time.Duration
	dropped := 0
	for range 10 {
		v := s.admit(0, 1250)
		dropped += v.overflowed
		left = append(left, v.due[:v.copies]...)
	}
	// The first leaves at once; three wait; six are dropped.
	if want := []time.Duration{0, 10 * ms, 20 * ms, 30 * ms}; dropped != 6 || !equal(left, want) {
		t.Fatalf("10 packets at once: leave at %v with %d dropped, want %v with 6 dropped", left, dropped, want)
	}
	if v := s.admit(15*ms, 1250); v.copies != 1 || v.due[0] != 40*ms {
		t.Errorf("after one left the queue: %+v, want one copy leaving at 40ms", v)
	}
	if v := s.admit(15*ms, 1250); v.overflowed != 1 {
		t.Errorf("with the queue full again: %+v, want it dropped", v)
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestShaperSeed: the same seed makes the same decisions; another seed others.
func TestShaperSeed(t *testing.T) {
	imp, _ := Impairment{Delay: 50 * ms, Jitter: 10 * ms, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1}.withDefaults(DefaultMTU)
	run := func(seed byte) []verdict {
		s := newShaper(imp, [32]byte{seed})
		var vs []verdict
		for i := range 1000 {
			vs = append(vs, s.admit(time.Duration(i)*ms, 1000))
		}
		return vs
	}
	a, b, c := run(1), run(1), run(2)
	same := func(x, y []verdict) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("two shapers with seed 1 decided differently")
	}
	if same(a, c) {
		t.Error("seeds 1 and 2 made the same 1000 decisions")
	}
}

// TestShaperAllocs: deciding a packet's fate allocates nothing once the rate limit's queue
// has grown.
func TestShaperAllocs(t *testing.T) {
	s := testShaper(t, Impairment{Delay: 5 * ms, Jitter: ms, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01, Rate: 100_000_000})
	now := time.Duration(0)
	step := func() {
		now += 100 * time.Microsecond
		s.admit(now, 1500)
	}
	for range 10000 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("admit allocates %v times per packet, want 0", n)
	}
}

// TestLine: the delay line releases packets by due time, and in the order they were read
// when they are due together.
func TestLine(t *testing.T) {
	var l line
	for _, p := range []*packet{{due: 30, seq: 1}, {due: 10, seq: 2}, {due: 20, seq: 4}, {due: 20, seq: 3}, {due: 0, seq: 5}} {
		heap.Push(&l, p)
	}
	var got []uint64
	for l.Len() > 0 {
		got = append(got, heap.Pop(&l).(*packet).seq)
	}
	want := []uint64{5, 2, 3, 4, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("released %v, want %v", got, want)
		}
	}
}

// TestImpairmentValid: what New refuses, and the defaults it fills in.
func TestImpairmentValid(t *testing.T) {
	for _, tc := range []struct {
		imp  Impairment
		want string // in the error; "" is valid
	}{
		{Impairment{}, ""},
		{Impairment{Loss: 1, Duplicate: 1, Reorder: 1}, ""},
		{Impairment{Loss: 1.5}, "loss 1.5 is not a probability"},
		{Impairment{Duplicate: -0.1}, "duplicate -0.1 is not a probability"},
		{Impairment{Reorder: 2}, "reorder 2 is not a probability"},
		{Impairment{Delay: -ms}, "delay -1ms is negative"},
		{Impairment{Jitter: -ms}, "jitter -1ms is negative"},
		{Impairment{Rate: -1}, "rate -1 bit/s is negative"},
		{Impairment{Queue: -1}, "must not be negative"},
	} {
		got, err := tc.imp.withDefaults(1500)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("withDefaults(%+v) = %v, want no error", tc.imp, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("withDefaults(%+v) = %v, want an error with %q", tc.imp, err, tc.want)
		case tc.want == "" && (got.Burst != 1500 || got.Queue != DefaultQueue || got.Limit != DefaultLimit):
			t.Errorf("withDefaults(%+v) = %+v, want burst 1500, queue %d, limit %d", tc.imp, got, DefaultQueue, DefaultLimit)
		}
	}
}
