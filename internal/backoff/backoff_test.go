package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Exponential{Min: 100 * time.Millisecond, Max: time.Second}
	for failures, want := range []time.Duration{0, 100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			d := b.Delay(failures)
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", failures, d, want/2, want)
			}
		}
	}
	if d := b.Delay(1 << 20); d > time.Second {
		t.Fatalf("Delay(1<<20) = %v, want at most Max", d)
	}
}
