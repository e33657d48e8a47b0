package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// config is what the flags set.
type config struct {
	out       string // directory for the results and logs
	wireguard string // the wireguard-go binary
	adjacent  string // an adjacent binary to measure; "" builds ./cmd/adjacent
	modes     []string
	seconds   int // iperf3 seconds per direction
	rrCount   int // blast rr round trips
	connCount int // blast connect connects
	rounds    int // how many times every mode runs, in turns; the report holds the medians
	measures  map[string]bool
}

// measures are what -measures chooses from, in the order they run; every mode that has a
// number for one measures it. The default is all of them.
var measureNames = []string{"throughput", "rtt", "connect", "tps", "scale", "syscalls"}

// wants reports whether the run measures name.
func (c config) wants(name string) bool { return c.measures[name] }

// parseMeasures reads -measures: names from measureNames, separated by commas.
func parseMeasures(list string) (map[string]bool, error) {
	chosen := map[string]bool{}
	for _, m := range strings.Split(list, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if !slices.Contains(measureNames, m) {
			return nil, fmt.Errorf("unknown measure %q; measures are %s", m, strings.Join(measureNames, ","))
		}
		chosen[m] = true
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("-measures chose nothing; measures are %s", strings.Join(measureNames, ","))
	}
	return chosen, nil
}

func main() {
	var cfg config
	var modes string
	flag.StringVar(&cfg.out, "out", "bench/out", "directory for results.md, results.svg, results.json and logs/")
	flag.StringVar(&cfg.adjacent, "adjacent", "", "an adjacent binary to measure instead of building ./cmd/adjacent (e.g. an older commit's, for a before/after)")
	flag.StringVar(&cfg.wireguard, "wireguard", "bin/peers/wireguard", "wireguard-go binary (GOBIN=bin/peers go install golang.zx2c4.com/wireguard@latest)")
	flag.StringVar(&modes, "modes", "", "comma-separated modes to run, default all: "+strings.Join(modeKeys(), ","))
	var measures string
	flag.StringVar(&measures, "measures", strings.Join(measureNames, ","),
		"comma-separated measures: throughput (iperf3 each way), rtt (64-byte round trips), connect (connect plus first round trip), "+
			"tps (pgbench -S, 8 clients, PostgreSQL in B), scale (new connections/s, memory per idle connection; portal modes), "+
			"syscalls (system calls per frame; portal modes)")
	flag.IntVar(&cfg.seconds, "t", 5, "seconds of each iperf3 run and of each pgbench run")
	flag.IntVar(&cfg.rrCount, "rr", 3000, "64-byte round trips of blast rr")
	flag.IntVar(&cfg.connCount, "connects", 300, "connects of blast connect")
	flag.IntVar(&cfg.rounds, "rounds", 1, "run every mode this many times, the modes taking turns, and report each figure's median")
	flag.Parse()
	if cfg.rounds < 1 {
		fmt.Fprintf(os.Stderr, "compare: -rounds %d: give 1 or more (3 for figures that the machine's drift does not decide)\n", cfg.rounds)
		os.Exit(2)
	}
	if modes != "" {
		cfg.modes = strings.Split(modes, ",")
	}
	measured, err := parseMeasures(measures)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	cfg.measures = measured
	if err := netns.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v; run it as root (sudo make bench)\n", err)
		os.Exit(1)
	}
	// A closed stdout (make bench | head) must not kill the run before it cleans up.
	signal.Ignore(syscall.SIGPIPE)
	// Interrupts cancel the run; every namespace and process is still removed before exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// run does the whole comparison and cleans up after itself on every path.
func run(ctx context.Context, cfg config) (err error) {
	for _, k := range cfg.modes {
		if findMode(k) == nil {
			return fmt.Errorf("unknown mode %q; modes are %s", k, strings.Join(modeKeys(), ","))
		}
	}
	b, err := newBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	results := b.runModes(ctx)
	if ctx.Err() != nil {
		// The table of what was measured, but an earlier run's files stay as they were.
		writeText(os.Stdout, b.header(), results, goals(results))
		return errors.New("interrupted; the namespaces and processes were removed, the results files left as they were")
	}
	if err := b.report(results); err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if r.Status == statusFailed {
			failed = append(failed, r.Key)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d mode(s) failed: %s (see the notes in %s/results.md and the logs in %s/logs)",
			len(failed), strings.Join(failed, ", "), cfg.out, cfg.out)
	}
	return nil
}
