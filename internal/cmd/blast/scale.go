package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// connectRate opens connections from parallel clients for the given time, each with one
// 64-byte round trip, and reports connections per second.
func connectRate(addr string, parallel int, d time.Duration) error {
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := oneConnect(addr); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("after %d connects: %w", done.Load(), firstErr)
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("ok rate parallel=%d connects=%d seconds=%.2f per_second=%.0f\n", parallel, done.Load(), secs, float64(done.Load())/secs)
	return nil
}

// oneConnect is one connect plus first round trip of 64 bytes, and the close.
func oneConnect(addr string) error {
	_, c, err := firstRoundTrip(addr, 64)
	if err == nil {
		c.Close()
	}
	return err
}

// idle opens count connections, each with one round trip so the portal session is set up
// end to end, prints a line when all are open and holds them until its standard input ends.
func idle(addr string, count int) error {
	buf := make([]byte, 64)
	conns := make([]io.Closer, 0, count)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range count {
		c, err := dial(addr, modeRR, int64(len(buf)))
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
	}
	fmt.Printf("ok idle count=%d\n", count)
	io.Copy(io.Discard, os.Stdin)
	return nil
}
