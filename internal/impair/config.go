package impair

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Config describes a link. The zero value of every field is a documented default; the zero
// Impairment passes packets unchanged and at once.
type Config struct {
	A, B Endpoint // the two sides

	AtoB, BtoA Impairment // what happens to packets A sends to B, and to those B sends to A

	MTU    int          // of both devices; default 1500
	Rand   io.Reader    // seeds each direction's generator; default crypto/rand
	Logger *slog.Logger // default slog.Default()
}

// Endpoint is one side of a link.
type Endpoint struct {
	// Netns names the network namespace the side's device goes in, as ip netns knows it
	// (a name under /run/netns), or a path to a namespace file such as /proc/PID/ns/net.
	// Empty is this process's namespace.
	Netns string
	// Addrs are the device's addresses with their prefixes, e.g. 10.9.0.1/24; the prefix is
	// routed through the link. IPv6 addresses skip duplicate address detection.
	Addrs []netip.Prefix
	// Name is the device's name or a template with %d; default "impair%d".
	Name string
}

// Impairment is what happens to the packets of one direction. Every zero value turns its
// impairment off.
type Impairment struct {
	// Delay is how long a packet takes from one side to the other, beyond the rate limit's
	// queue.
	Delay time.Duration
	// Jitter spreads the delay uniformly over Delay-Jitter..Delay+Jitter (never below 0).
	// Jitter wider than the spacing between packets reorders them.
	Jitter time.Duration
	// Loss is the probability, 0 to 1, that a packet is dropped.
	Loss float64
	// Duplicate is the probability that a packet is sent twice; the copy has its own delay.
	Duplicate float64
	// Reorder is the probability that a packet is held back one more Delay, so that the
	// packets of the next Delay overtake it; it needs a Delay. (netem's reorder sends the
	// packet at once instead, ahead of those of the last Delay. No path delivers faster
	// than its delay, though, and TCP's BBR takes its minimum round trip from such a
	// packet: on a link of 50 ms each way it saw 0.1 ms and kept its window at 12 packets.)
	Reorder float64
	// Rate limits the direction to this many bits per second of IP packets; 0 is no limit.
	Rate int64
	// Burst is the token bucket's size in bytes: what may pass at once after a quiet
	// period. Default one MTU (packets leave at exactly Rate).
	Burst int
	// Queue is how many packets may wait for the rate limit; beyond it they are dropped
	// (drop-tail, counted in Overflowed). Default 1000, netem's limit.
	Queue int
	// Limit is how many packets the delay line holds at once; beyond it they are dropped
	// (counted in Overflowed). Default 16384.
	Limit int
}

// Defaults of the fields above.
const (
	DefaultMTU   = 1500
	DefaultQueue = 1000
	DefaultLimit = 16384
	defaultName  = "impair%d"
)

// withDefaults returns imp with its defaults filled in, or why it is not valid.
func (imp Impairment) withDefaults(mtu int) (Impairment, error) {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", imp.Loss}, {"duplicate", imp.Duplicate}, {"reorder", imp.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) { // also refuses NaN
			return imp, fmt.Errorf("%s %v is not a probability: give a fraction from 0 to 1 (0.01 for 1%%)", p.name, p.v)
		}
	}
	switch {
	case imp.Delay < 0:
		return imp, fmt.Errorf("delay %v is negative", imp.Delay)
	case imp.Jitter < 0:
		return imp, fmt.Errorf("jitter %v is negative", imp.Jitter)
	case imp.Rate < 0:
		return imp, fmt.Errorf("rate %d bit/s is negative; 0 is no limit", imp.Rate)
	case imp.Burst < 0 || imp.Queue < 0 || imp.Limit < 0:
		return imp, fmt.Errorf("burst %d, queue %d and limit %d must not be negative; 0 is the default", imp.Burst, imp.Queue, imp.Limit)
	}
	if imp.Burst == 0 {
		imp.Burst = mtu
	}
	if imp.Queue == 0 {
		imp.Queue = DefaultQueue
	}
	if imp.Limit == 0 {
		imp.Limit = DefaultLimit
	}
	return imp, nil
}

// String describes the impairment in the words of the impair command's flags.
func (imp Impairment) String() string {
	s := fmt.Sprintf("delay %v jitter %v loss %g%% dup %g%% reorder %g%%", imp.Delay, imp.Jitter, imp.Loss*100, imp.Duplicate*100, imp.Reorder*100)
	switch r := imp.Rate; {
	case r == 0:
	case r%1e9 == 0:
		s += fmt.Sprintf(" rate %dgbit", r/1e9)
	case r%1e6 == 0:
		s += fmt.Sprintf(" rate %dmbit", r/1e6)
	case r%1e3 == 0:
		s += fmt.Sprintf(" rate %dkbit", r/1e3)
	default:
		s += fmt.Sprintf(" rate %dbit", r)
	}
	return s
}

// Stats counts the packets of one direction since the link was made.
type Stats struct {
	Received   uint64 // read from the sending side's device
	Passed     uint64 // written to the receiving side's device, copies included
	Dropped    uint64 // not delivered: Lost + Overflowed + failed writes
	Lost       uint64 // dropped by the Loss probability
	Overflowed uint64 // dropped because the rate limit's queue or the delay line was full
	Duplicated uint64 // sent twice
	Reordered  uint64 // delivered after a packet that was read after them
	Delayed    uint64 // held for a nonzero time by the rate limit or the delay line
}
