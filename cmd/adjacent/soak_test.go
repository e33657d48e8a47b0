package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 16, the soak: the kill tests' three nodes on loopback under a steady mix of long
// transfers, many short connections and idle ones, for $ADJACENT_SOAK_DURATION (default
// 2m; `make soak` runs 1h). Every connection must complete byte-exact (nothing here
// causes a reset, so none may happen), and the resident memory, goroutines and open file
// descriptors of every node must be flat after warm-up: the last quarter's peak within a
// generous bound of the second quarter's. With $ADJACENT_SOAK_OUT set to a directory, the
// curves go there as soak.md (a table) and soak.svg.

const (
	soakEnv    = "ADJACENT_SOAK_DURATION"
	soakOutEnv = "ADJACENT_SOAK_OUT"
)

// The mix: long transfers (paced at 2 MB/s each way by sendPattern), short connections
// back to back with a pause, and idle connections that hold still before a small exchange.
const (
	soakLong      = 2
	soakLongBytes = 8 << 20
	soakShort     = 4
	soakShortWait = 50 * time.Millisecond
	soakIdle      = 16
	soakIdleHold  = 20 * time.Second // under the target's hangAfter
)

func TestSoak(t *testing.T) {
	d := 2 * time.Minute
	if v := os.Getenv(soakEnv); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 20*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 20s, such as 1h", soakEnv, v)
		}
	}
	row := newRow(t, "soak "+d.String(), fmt.Sprintf("%d long transfers, %d short-connection loops, %d idle connections, at once", soakLong, soakShort, soakIdle),
		"none; re-handshakes every 30s")
	t.Setenv(rehandshakeEnv, "30s")
	f := newFaults(t, false)
	nodes := []soakNode{{name: "hub", home: f.hub}, {name: "bank", home: f.bank}, {name: "analysis", home: f.analysis}}
	for i := range nodes {
		nodes[i].pid, _ = strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(nodes[i].home, "node.pid"))))
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		wg                   sync.WaitGroup
		conns, moved, failed atomic.Int64
		mu                   sync.Mutex
		errs                 []string
	)
	worker := func(kind string, i int, one func(r *rand.Rand) (int64, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := sha256.Sum256([]byte(fmt.Sprintf("%s %s %d", t.Name(), kind, i)))
			r := rand.New(rand.NewChaCha8(seed))
			for ctx.Err() == nil {
				n, err := one(r)
				conns.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s %d at %v: %v", kind, i, time.Now().Format("15:04:05"), err))
					mu.Unlock()
					time.Sleep(time.Second)
					continue
				}
				moved.Add(n)
			}
		}()
	}
	both := ends{client: true, server: true}
	for i := range soakLong {
		worker("long", i, func(r *rand.Rand) (int64, error) {
			return 2 * soakLongBytes, f.transfer(r.Uint64(), soakLongBytes, soakLongBytes, both)
		})
	}
	for i := range soakShort {
		worker("short", i, func(r *rand.Rand) (int64, error) {
			time.Sleep(soakShortWait)
			n := r.Int64N(16 << 10)
			return 2 * n, f.transfer(r.Uint64(), n, n, both)
		})
	}
	for i := range soakIdle {
		worker("idle", i, func(r *rand.Rand) (int64, error) {
			c, err := net.DialTimeout("tcp", f.inlet, 10*time.Second)
			if err != nil {
				return 0, err
			}
			hold := min(soakIdleHold, time.Until(deadlineOf(ctx))+time.Second)
			time.Sleep(max(hold, 0))
			return 2 << 10, exchangeOn(c, r.Uint64(), 1<<10, 1<<10, both)
		})
	}

	// Samples: 40 over the run.
	every := d / 40
	var samples []soakSample
	start := time.Now()
	for sampled := false; !sampled || ctx.Err() == nil; sampled = true {
		s := soakSample{at: time.Since(start)}
		for _, n := range nodes {
			s.nodes = append(s.nodes, n.sample(t))
		}
		samples = append(samples, s)
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
	wg.Wait()

	table := soakTable(nodes, samples)
	t.Logf("%d connections, %s moved, %d failed\n%s", conns.Load(), sizeText(moved.Load()), failed.Load(), table)
	row.Load += fmt.Sprintf(": %d connections, %s moved", conns.Load(), sizeText(moved.Load()))
	if len(errs) > 0 {
		row.BytesLost = -1 // unknown: a failed connection may have lost any of its bytes
		t.Errorf("%d of %d connections failed, where the workload caused no reset:\n%s\n%s", len(errs), conns.Load(),
			strings.Join(errs[:min(len(errs), 10)], "\n"), f.logs())
	}
	var growth []string
	for i, n := range nodes {
		for mi, m := range soakMetrics {
			q2, q4 := peak(samples, i, mi, 1), peak(samples, i, mi, 3)
			if q4 > q2*3/2+m.slack {
				growth = append(growth, fmt.Sprintf("%s %s: peak %d in the second quarter, %d in the last", n.name, m.name, q2, q4))
			}
		}
	}
	if len(growth) > 0 {
		t.Errorf("not flat after warm-up:\n%s", strings.Join(growth, "\n"))
	}
	row.Notes = "last-quarter peaks: " + soakPeaks(nodes, samples)
	if dir := os.Getenv(soakOutEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		md := fmt.Sprintf("# Soak, %v\n\n%d connections, %s moved, %d failed. Generated by TestSoak (`make soak`).\n\n![RSS, goroutines and fds](soak.svg)\n\n%s",
			d, conns.Load(), sizeText(moved.Load()), failed.Load(), table)
		if err := os.WriteFile(filepath.Join(dir, "soak.md"), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "soak.svg"), []byte(soakSVG(nodes, samples)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

type soakNode struct {
	name, home string
	pid        int
}

// nodeSample is one node's resident memory (KiB), goroutines and open descriptors; -1 where
// a reading failed.
type nodeSample [3]int64

type soakSample struct {
	at    time.Duration
	nodes []nodeSample
}

// soakMetrics name the readings of a nodeSample, with the absolute slack the flatness check
// allows on top of half again the second quarter's peak.
var soakMetrics = []struct {
	name  string
	slack int64
}{{"RSS KiB", 32 << 10}, {"goroutines", 200}, {"fds", 64}}

// Indexes of soakMetrics and of a nodeSample.
const (
	rssKiB = iota
	goroutineCount
	fdCount
)

func (n soakNode) sample(t *testing.T) nodeSample {
	s := nodeSample{-1, -1, -1}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s[0], _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	s[1] = goroutines(filepath.Join(n.home, "node.sock"))
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.pid)); err == nil {
		s[2] = int64(len(fds))
	}
	return s
}

// goroutines asks the node's pprof endpoint, on its owner-only API socket, how many
// goroutines it runs.
func goroutines(sock string) int64 {
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Get("http://node/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return -1
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	n, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil {
		return -1
	}
	return n
}

// peak is the highest reading of metric idx of node i in quarter q (0-3) of the samples.
func peak(samples []soakSample, i, idx, q int) int64 {
	from, to := len(samples)*q/4, len(samples)*(q+1)/4
	var p int64
	for _, s := range samples[from:max(to, from+1)] {
		p = max(p, s.nodes[i][idx])
	}
	return p
}

func soakPeaks(nodes []soakNode, samples []soakSample) string {
	var parts []string
	for i, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s %d MiB/%d goroutines/%d fds", n.name,
			peak(samples, i, rssKiB, 3)>>10, peak(samples, i, goroutineCount, 3), peak(samples, i, fdCount, 3)))
	}
	return strings.Join(parts, ", ")
}

// soakTable is the samples as a markdown table: one row per sample (at most 20 shown),
// RSS in MiB, goroutines and fds per node.
func soakTable(nodes []soakNode, samples []soakSample) string {
	var b strings.Builder
	b.WriteString("| time |")
	for _, n := range nodes {
		fmt.Fprintf(&b, " %s RSS MiB | %s goroutines | %s fds |", n.name, n.name, n.name)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", 3*len(nodes)) + "\n")
	step := max(1, len(samples)/20)
	for k := 0; k < len(samples); k += step {
		if k+step >= len(samples) {
			k = len(samples) - 1
		}
		s := samples[k]
		fmt.Fprintf(&b, "| %v |", s.at.Round(time.Second))
		for _, v := range s.nodes {
			fmt.Fprintf(&b, " %.1f | %d | %d |", float64(v[0])/1024, v[1], v[2])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// soakSVG draws each metric of each node as a line, one panel per metric, each scaled to
// its own maximum.
func soakSVG(nodes []soakNode, samples []soakSample) string {
	const w, h, pad = 600, 150, 30
	colors := []string{"#1f77b4", "#d62728", "#2ca02c"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w+2*pad, len(soakMetrics)*(h+pad)+pad)
	total := samples[len(samples)-1].at.Seconds()
	for mi, m := range soakMetrics {
		top := pad + mi*(h+pad)
		var hi int64 = 1
		for _, s := range samples {
			for _, v := range s.nodes {
				hi = max(hi, v[mi])
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (max %d)</text>`+"\n", pad, top-5, m.name, hi)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", pad, top, w, h)
		for ni, n := range nodes {
			var pts []string
			for _, s := range samples {
				x := pad + int(float64(w)*s.at.Seconds()/max(total, 1))
				y := top + h - int(float64(h)*float64(max(s.nodes[ni][mi], 0))/float64(hi))
				pts = append(pts, fmt.Sprintf("%d,%d", x, y))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" points="%s"/>`+"\n", colors[ni%len(colors)], strings.Join(pts, " "))
			if mi == 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", pad+w-200+ni*65, top+15, colors[ni%len(colors)], n.name)
			}
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
