package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential is the delay after n consecutive failures: a random duration in [d/2, d]
// where d = min(Min * 2^(n-1), Max). No failure, no delay.
type Exponential struct {
	Min, Max time.Duration
}

// Delay returns the wait before the next attempt after failures consecutive failures.
func (b Exponential) Delay(failures int) time.Duration {
	if failures <= 0 || b.Min <= 0 {
		return 0
	}
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Accept spaces retries of a listener whose Accept fails with a temporary error (out of file
// descriptors), as net/http does: from 5ms up to a second.
var Accept = Exponential{Min: 5 * time.Millisecond, Max: time.Second}
