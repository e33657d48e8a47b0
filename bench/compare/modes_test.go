package main

import (
	"math"
	"testing"
)

func TestMediansOfRounds(t *testing.T) {
	row := func(status string, up, tps float64) result {
		r := newResult(mode{key: "adjacent", name: "adjacent, direct portal", topo: "direct"})
		r.Status, r.UpGbps, r.TPS, r.SetupSecs = status, up, tps, 1
		return r
	}
	nan := math.NaN()
	got := medians([][]result{
		{row(statusOK, 6, 15000)},
		{row(statusOK, 9, nan)},
		{row(statusOK, 7, 13000)},
	})
	if len(got) != 1 {
		t.Fatalf("%d rows, want 1", len(got))
	}
	r := got[0]
	if r.UpGbps != 7 || r.TPS != 14000 || r.SetupSecs != 3 || r.Status != statusOK {
		t.Errorf("got up %v tps %v setup %v status %q; want the median 7, the mean of the middle two 14000 (one round did not measure), 3 s, ok",
			r.UpGbps, r.TPS, r.SetupSecs, r.Status)
	}
	if !math.IsNaN(r.RTTus) {
		t.Errorf("RTT %v, want NaN: no round measured it", r.RTTus)
	}

	failed := row(statusFailed, nan, nan)
	failed.Note = "setup: boom"
	got = medians([][]result{{row(statusOK, 6, 15000)}, {failed}})
	if got[0].Status != statusFailed || got[0].Note != "setup: boom" || got[0].UpGbps != 6 {
		t.Errorf("got status %q note %q up %v; want the failed round's status and note, the other round's figure", got[0].Status, got[0].Note, got[0].UpGbps)
	}
}
