package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/adjacentnet/adjacent/internal/impair"
)

// directions holds a flag's two values, A to B and B to A.
type directions [2]string

// split reads "X" (both directions) or "X/Y".
func split(s string) directions {
	if x, y, ok := strings.Cut(s, "/"); ok {
		return directions{x, y}
	}
	return directions{s, s}
}

// flagValues are the impairment flags as given.
type flagValues struct {
	delay, jitter, loss, dup, reorder, rate, burst, queue string
}

// impairments parses the flags into the impairments of A to B and B to A.
func (f flagValues) impairments() ([2]impair.Impairment, error) {
	var imps [2]impair.Impairment
	for _, p := range []struct {
		name, value string
		set         func(imp *impair.Impairment, s string) error
	}{
		{"delay", f.delay, func(imp *impair.Impairment, s string) (err error) { imp.Delay, err = duration(s); return }},
		{"jitter", f.jitter, func(imp *impair.Impairment, s string) (err error) { imp.Jitter, err = duration(s); return }},
		{"loss", f.loss, func(imp *impair.Impairment, s string) (err error) { imp.Loss, err = probability(s); return }},
		{"dup", f.dup, func(imp *impair.Impairment, s string) (err error) { imp.Duplicate, err = probability(s); return }},
		{"reorder", f.reorder, func(imp *impair.Impairment, s string) (err error) { imp.Reorder, err = probability(s); return }},
		{"rate", f.rate, func(imp *impair.Impairment, s string) (err error) { imp.Rate, err = rate(s); return }},
		{"burst", f.burst, func(imp *impair.Impairment, s string) (err error) { imp.Burst, err = count(s); return }},
		{"queue", f.queue, func(imp *impair.Impairment, s string) (err error) { imp.Queue, err = count(s); return }},
	} {
		if p.value == "" {
			continue
		}
		for i, s := range split(p.value) {
			if err := p.set(&imps[i], strings.TrimSpace(s)); err != nil {
				return imps, fmt.Errorf("-%s %s: %w", p.name, p.value, err)
			}
		}
	}
	return imps, nil
}

func duration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// probability reads "1%" or "0.01".
func probability(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = t, 100
	}
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || !(p >= 0 && p <= scale) {
		return 0, fmt.Errorf("%q is not a probability: give a percentage (1%%) or a fraction (0.01)", s)
	}
	return p / scale, nil
}

// rate reads bit/s: 100mbit, 500kbit, 1gbit, 2000000.
func rate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	l := strings.ToLower(s)
	if strings.HasSuffix(l, "bps") {
		return 0, fmt.Errorf("%q is ambiguous (tc reads mbps as megabytes): give bits, e.g. 100mbit", s)
	}
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"bit", 1}} {
		if t, ok := strings.CutSuffix(l, u.suffix); ok {
			l, mult = t, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(l, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a rate: give bits per second, e.g. 100mbit, 500kbit or 2000000", s)
	}
	return int64(v * mult), nil
}

func count(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

// prefixes reads comma-separated prefixes.
func prefixes(s string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address with a prefix, e.g. 10.9.0.1/24", f)
		}
		ps = append(ps, p)
	}
	return ps, nil
}
