package ratelog

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// records is a slog.Handler that keeps what it is given.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

func (r *records) counts() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, rec := range r.recs {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "count" {
				out = append(out, a.Value.Int64())
			}
			return true
		})
	}
	return out
}

// TestBurstIsOneLinePerInterval: a thousand events in a burst are two lines, the first at
// once and one with the count of the rest when the interval ends; after a quiet interval the
// next event is logged at once again.
func TestBurstIsOneLinePerInterval(t *testing.T) {
	h := &records{}
	l := New(slog.New(h), slog.LevelWarn, "refused", 50*time.Millisecond)
	defer l.Stop()
	for i := range 1000 {
		l.Note(slog.Int("i", i))
	}
	if got := h.counts(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("during the burst: counts logged = %v, want [1]", got)
	}
	time.Sleep(200 * time.Millisecond) // the interval ends, then one passes quietly
	if got := h.counts(); !slices.Equal(got, []int64{1, 999}) {
		t.Fatalf("after the burst: counts logged = %v, want [1 999]", got)
	}
	l.Note()
	if got := h.counts(); !slices.Equal(got, []int64{1, 999, 1}) {
		t.Fatalf("after a quiet interval: counts logged = %v, want [1 999 1]", got)
	}
}

// TestStopFlushes: events counted but not yet logged are logged by Stop; later ones are not.
func TestStopFlushes(t *testing.T) {
	h := &records{}
	l := New(slog.New(h), slog.LevelWarn, "refused", time.Hour)
	for range 5 {
		l.Note()
	}
	l.Stop()
	l.Stop()
	l.Note()
	if got := h.counts(); !slices.Equal(got, []int64{1, 4}) {
		t.Fatalf("counts logged = %v, want [1 4]", got)
	}
}
