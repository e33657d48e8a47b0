package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/adjacentnet/adjacent/internal/impair"
)

func main() {
	var (
		cfg          impair.Config
		addrA, addrB string
		f            flagValues
	)
	flag.StringVar(&cfg.A.Netns, "a", "", "namespace of side A (ip netns name or path); empty is this one")
	flag.StringVar(&cfg.B.Netns, "b", "", "namespace of side B")
	flag.StringVar(&addrA, "addr-a", "", "A's addresses, comma-separated prefixes, e.g. 10.9.0.1/24,fd09::1/64")
	flag.StringVar(&addrB, "addr-b", "", "B's addresses")
	flag.StringVar(&f.delay, "delay", "", "delay each way, e.g. 50ms, or A-to-B/B-to-A: 50ms/5ms")
	flag.StringVar(&f.jitter, "jitter", "", "delay spread, ± this, e.g. 10ms")
	flag.StringVar(&f.loss, "loss", "", "loss probability, e.g. 1% or 0.01")
	flag.StringVar(&f.dup, "dup", "", "duplication probability")
	flag.StringVar(&f.reorder, "reorder", "", "probability that a packet is held back one more delay, behind those that follow it (needs -delay)")
	flag.StringVar(&f.rate, "rate", "", "rate limit in bit/s, e.g. 100mbit; none by default")
	flag.StringVar(&f.burst, "burst", "", "token bucket in bytes (default one MTU)")
	flag.StringVar(&f.queue, "queue", "", fmt.Sprintf("packets that may wait for the rate limit (default %d)", impair.DefaultQueue))
	flag.IntVar(&cfg.MTU, "mtu", impair.DefaultMTU, "MTU of both devices")
	seed := flag.Uint64("seed", 0, "seed of the random decisions, to repeat a run; 0 is random")
	stats := flag.Duration("stats", 0, "print the counters this often; 0 only at the end")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q; see -h", flag.Args()))
	}
	var err error
	if cfg.A.Addrs, err = prefixes(addrA); err != nil {
		fail(fmt.Errorf("-addr-a: %w", err))
	}
	if cfg.B.Addrs, err = prefixes(addrB); err != nil {
		fail(fmt.Errorf("-addr-b: %w", err))
	}
	imps, err := f.impairments()
	if err != nil {
		fail(err)
	}
	cfg.AtoB, cfg.BtoA = imps[0], imps[1]
	if *seed != 0 {
		var s [32]byte
		binary.LittleEndian.PutUint64(s[:], *seed)
		cfg.Rand = rand.NewChaCha8(s)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	l, err := impair.New(cfg)
	if err != nil {
		fail(err)
	}
	da, db := l.Devices()
	fmt.Printf("impair: up: A %s %s %v, B %s %s %v; A to B: %v; B to A: %v\n",
		name(cfg.A.Netns), da, cfg.A.Addrs, name(cfg.B.Netns), db, cfg.B.Addrs, cfg.AtoB, cfg.BtoA)
	var tick <-chan time.Time
	if *stats > 0 {
		t := time.NewTicker(*stats)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			print(l)
			continue
		case <-sigs:
		}
		break
	}
	err = l.Close()
	print(l)
	if err != nil {
		fail(err)
	}
}

func print(l *impair.Link) {
	ab, ba := l.Stats()
	fmt.Printf("impair: A to B %+v\nimpair: B to A %+v\n", ab, ba)
}

func name(ns string) string {
	if ns == "" {
		return "(this namespace)"
	}
	return ns
}

func fail(err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "impair:") {
		msg = "impair: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}
