package tcp

import (
	"math/rand/v2"
	"time"
)

// backoff spaces reconnection attempts: after n consecutive failures the next attempt waits
// a random duration in [d/2, d] where d = min(Min * 2^n, Max), so that many nodes cut off by
// one outage do not come back in lockstep.
type backoff struct {
	Min, Max time.Duration
}

func (b backoff) delay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}
