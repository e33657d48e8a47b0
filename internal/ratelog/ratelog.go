package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Logger logs one kind of event at most once per interval. The first event after a quiet
// interval is logged at once; those that follow within the interval are counted and logged
// as one line, with their count and the last one's attributes, when the interval ends.
type Logger struct {
	log      *slog.Logger
	level    slog.Level
	msg      string
	interval time.Duration

	mu      sync.Mutex
	count   int         // events not yet logged
	last    []slog.Attr // the attributes of the last of them
	timer   *time.Timer // armed until an interval passes without events
	stopped bool
}

// New returns a Logger that writes msg at level to log, at most once per interval.
func New(log *slog.Logger, level slog.Level, msg string, interval time.Duration) *Logger {
	return &Logger{log: log, level: level, msg: msg, interval: interval}
}

// Note records one event. It never blocks on the log for longer than one line's write.
func (l *Logger) Note(attrs ...slog.Attr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.timer != nil { // within an interval: count it
		l.count++
		l.last = attrs
		return
	}
	l.write(1, attrs)
	l.timer = time.AfterFunc(l.interval, l.flush)
}

// flush ends an interval: it logs the events counted during it, or goes quiet.
func (l *Logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.count == 0 {
		l.timer = nil
		return
	}
	l.write(l.count, l.last)
	l.count, l.last = 0, nil
	l.timer.Reset(l.interval)
}

// Stop logs the events still counted and ends the Logger: later events are dropped.
// It is idempotent.
func (l *Logger) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.count > 0 {
		l.write(l.count, l.last)
	}
}

func (l *Logger) write(count int, attrs []slog.Attr) {
	all := make([]slog.Attr, 0, len(attrs)+2)
	all = append(all, slog.Int("count", count))
	if count > 1 {
		all = append(all, slog.Duration("within", l.interval))
	}
	all = append(all, attrs...)
	l.log.LogAttrs(context.Background(), l.level, l.msg, all...)
}
