package dataplane

import (
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// TestWindowGrowsOnlyWhenItLimits: a receiver that writes whole windows quickly doubles its
// window up to the cap; one on a slow path (a window takes longer than maxWindowDelay to
// arrive) keeps it, so a slow link to the hub does not fill with one session's bytes (the
// channels' keepalives and refreshes wait behind them: TestImpairedHub). On a long round
// trip, where each window takes the round trip whatever its size, the window grows until
// the path's rate limits it: with 200 ms for maxWindowDelay, it stayed at 256 KiB on
// TestImpairedHub's path (0.8 s per window) and the portal reached 0.3× plain TCP.
func TestWindowGrowsOnlyWhenItLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		// perChunk is how long one chunk takes to arrive and be written, given the window.
		perChunk   func(window int) time.Duration
		wantWindow int
	}{
		{"fast path", func(int) time.Duration { return time.Millisecond }, DefaultWindowCap},
		{"slow path", func(int) time.Duration { return 300 * time.Millisecond }, DefaultWindow}, // 1.2 s a window
		{"long round trip", func(window int) time.Duration {
			// A window per 800 ms round trip, up to a path of 2 MB/s.
			return max(800*time.Millisecond*chunk/time.Duration(window), chunk*time.Second/2e6)
		}, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SessionConfig{Router: routing.New(routing.Config{Logger: quiet}), Logger: quiet}.withDefaults()
			s := newSession(cfg, new(Counters), "s", nil)
			clock := time.Unix(1e9, 0)
			s.now = func() time.Time { return clock }
			for range 2000 {
				clock = clock.Add(tc.perChunk(s.window))
				s.returnCredit(chunk)
			}
			if s.window != tc.wantWindow {
				t.Fatalf("window = %d KiB, want %d KiB", s.window>>10, tc.wantWindow>>10)
			}
		})
	}
}
