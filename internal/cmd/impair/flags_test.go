package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/impair"
)

func TestImpairments(t *testing.T) {
	for _, tc := range []struct {
		f    flagValues
		want [2]impair.Impairment
		err  string
	}{
		{f: flagValues{}, want: [2]impair.Impairment{}},
		{
			f: flagValues{delay: "50ms", jitter: "10ms", loss: "1%", dup: "0.5%", reorder: "0.01", rate: "100mbit"},
			want: [2]impair.Impairment{
				{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Duplicate: 0.005, Reorder: 0.01, Rate: 100_000_000},
				{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Duplicate: 0.005, Reorder: 0.01, Rate: 100_000_000},
			},
		},
		{
			f: flagValues{delay: "50ms/5ms", loss: "30%/0", rate: "1gbit/500kbit", burst: "3000/", queue: "/10"},
			want: [2]impair.Impairment{
				{Delay: 50 * time.Millisecond, Loss: 0.3, Rate: 1_000_000_000, Burst: 3000},
				{Delay: 5 * time.Millisecond, Rate: 500_000, Queue: 10},
			},
		},
		{f: flagValues{rate: "2000000"}, want: [2]impair.Impairment{{Rate: 2_000_000}, {Rate: 2_000_000}}},
		{f: flagValues{rate: "10mbps"}, err: "ambiguous"},
		{f: flagValues{rate: "fast"}, err: "not a rate"},
		{f: flagValues{loss: "2"}, err: "not a probability"},
		{f: flagValues{loss: "150%"}, err: "not a probability"},
		{f: flagValues{delay: "50"}, err: "-delay 50"},
		{f: flagValues{queue: "many"}, err: "not a whole number"},
	} {
		got, err := tc.f.impairments()
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want one with %q", tc.f, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%+v: %v", tc.f, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%+v = %+v, want %+v", tc.f, got, tc.want)
		}
	}
}

func TestPrefixes(t *testing.T) {
	got, err := prefixes("10.9.0.1/24, fd09::1/64,")
	if want := []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("fd09::1/64")}; err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("prefixes = %v, %v, want %v", got, err, want)
	}
	if _, err := prefixes("10.9.0.1"); err == nil || !strings.Contains(err.Error(), "with a prefix") {
		t.Errorf("prefixes(10.9.0.1): %v, want a refusal", err)
	}
}
