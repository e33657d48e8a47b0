package dataplane

import (
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// TestWindowGrowsOnlyWhenItLimits: a receiver that writes whole windows quickly doubles its
// window up to the cap; one on a slow path (a window takes longer than maxWindowDelay to
// arrive) keeps it, so a slow link to the hub does not fill with one session's bytes (the
// channels' keepalives and refreshes wait behind them: TestImpairedHub).
func TestWindowGrowsOnlyWhenItLimits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perChunk  time.Duration // time to write one chunk
		wantGrown bool
	}{
		{"fast path", time.Millisecond, true},
		{"slow path", 100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SessionConfig{Router: routing.New(routing.Config{Logger: quiet}), Logger: quiet}.withDefaults()
			s := newSession(cfg, new(Counters), "s", nil)
			clock := time.Unix(1e9, 0)
			s.now = func() time.Time { return clock }
			for range 2000 {
				clock = clock.Add(tc.perChunk)
				s.returnCredit(chunk)
			}
			switch {
			case tc.wantGrown && s.window != DefaultWindowCap:
				t.Fatalf("window = %d after fast windows, want the cap %d", s.window, DefaultWindowCap)
			case !tc.wantGrown && s.window != DefaultWindow:
				t.Fatalf("window = %d after slow windows, want it kept at %d", s.window, DefaultWindow)
			}
		})
	}
}
