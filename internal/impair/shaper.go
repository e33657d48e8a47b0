package impair

import (
	"math/rand/v2"
	"time"
)

// shaper decides the fate of one direction's packets: loss, duplication, when the rate
// limit lets each copy go, and how long the delay line holds it. One goroutine uses it (the
// direction's reader). It reads no clock: times are durations since the link was made,
// given by the caller, so tests drive it with made-up times.
type shaper struct {
	imp Impairment // with defaults
	rng *rand.Rand

	// The rate limit is a token bucket of imp.Burst bytes filling at imp.Rate; tat is when
	// its debt is paid (at and after tat it is full). waiting holds the departure times of
	// the packets still in its queue, in order.
	tat     time.Duration
	waiting fifo
}

func newShaper(imp Impairment, seed [32]byte) *shaper {
	return &shaper{imp: imp, rng: rand.New(rand.NewChaCha8(seed))}
}

// verdict is what becomes of one packet.
type verdict struct {
	lost       bool             // dropped by the Loss probability
	duplicated bool             // sent twice
	copies     int              // copies to deliver, 0 to 2
	due        [2]time.Duration // when each copy leaves the link
	overflowed int              // copies refused by the rate limit's full queue
}

// admit decides the fate of a packet of size bytes read at now.
func (s *shaper) admit(now time.Duration, size int) verdict {
	var v verdict
	if s.chance(s.imp.Loss) {
		v.lost = true
		return v
	}
	n := 1
	if s.chance(s.imp.Duplicate) {
		v.duplicated = true
		n = 2
	}
	for range n {
		leave, ok := s.depart(now, size)
		if !ok {
			v.overflowed++
			continue
		}
		v.due[v.copies] = leave + s.delay()
		v.copies++
	}
	return v
}

// chance reports true with probability p; it draws nothing when p is 0, so an impairment
// that is off does not shift the decisions of the others.
func (s *shaper) chance(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}

// delay is how long the delay line holds one copy.
func (s *shaper) delay() time.Duration {
	d := s.imp.Delay
	if s.chance(s.imp.Reorder) {
		d += s.imp.Delay // held back behind the packets of the next Delay
	}
	if s.imp.Jitter > 0 {
		d += time.Duration((2*s.rng.Float64() - 1) * float64(s.imp.Jitter))
	}
	return max(d, 0)
}

// depart is when a packet of size bytes arriving at now leaves the rate limit, or false
// when its queue is full.
func (s *shaper) depart(now time.Duration, size int) (time.Duration, bool) {
	if s.imp.Rate == 0 {
		return now, true
	}
	s.waiting.expire(now)
	// The bucket holds enough tokens for this packet once its debt is down to Burst-size.
	leave := max(now, s.tat-s.transmit(max(s.imp.Burst, size)-size), s.waiting.last())
	if leave > now && s.waiting.len() >= s.imp.Queue {
		return 0, false
	}
	s.tat = max(s.tat, leave) + s.transmit(size)
	if leave > now {
		s.waiting.push(leave)
	}
	return leave, true
}

// transmit is how long n bytes take at the rate limit.
func (s *shaper) transmit(n int) time.Duration {
	return time.Duration(int64(n) * 8 * int64(time.Second) / s.imp.Rate)
}

// fifo is a queue of nondecreasing times.
type fifo struct {
	t    []time.Duration
	head int
}

func (f *fifo) len() int { return len(f.t) - f.head }

func (f *fifo) push(t time.Duration) { f.t = append(f.t, t) }

// last is the latest time queued, or 0.
func (f *fifo) last() time.Duration {
	if f.len() == 0 {
		return 0
	}
	return f.t[len(f.t)-1]
}

// expire forgets the times up to now.
func (f *fifo) expire(now time.Duration) {
	for f.head < len(f.t) && f.t[f.head] <= now {
		f.head++
	}
	if f.head == len(f.t) {
		f.t, f.head = f.t[:0], 0
	} else if f.head >= 1024 && 2*f.head >= len(f.t) {
		n := copy(f.t, f.t[f.head:])
		f.t, f.head = f.t[:n], 0
	}
}

// packet is one copy of an IP packet in the delay line.
type packet struct {
	buf []byte        // headroom for the device, then the packet
	n   int           // the packet's length
	due time.Duration // when it leaves the link
	seq uint64        // order in which it was read; copies share it
}

// line is the delay line: a min-heap of packets by due time, then by the order they were
// read (container/heap's interface).
type line []*packet

func (l line) Len() int { return len(l) }
func (l line) Less(i, j int) bool {
	if l[i].due != l[j].due {
		return l[i].due < l[j].due
	}
	return l[i].seq < l[j].seq
}
func (l line) Swap(i, j int) { l[i], l[j] = l[j], l[i] }
func (l *line) Push(x any)   { *l = append(*l, x.(*packet)) }
func (l *line) Pop() any {
	old := *l
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*l = old[:len(old)-1]
	return p
}
