package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Issue 16's reliability table: each scenario test fills in a row, and when
// $ADJACENT_RELIABILITY_OUT names a file, appends it there as one JSON line when it ends.
// `make reliability` (internal/cmd/reliability) runs the scenarios with it set and prints
// the table.

// reliabilityEnv names the file the rows go to.
const reliabilityEnv = "ADJACENT_RELIABILITY_OUT"

// scenarioRow is one row of the table; internal/cmd/reliability reads the same fields.
type scenarioRow struct {
	Scenario  string `json:"scenario"`
	Load      string `json:"load"`
	Faults    string `json:"faults"`
	BadInputs string `json:"bad_inputs"`
	BytesLost int64  `json:"bytes_lost"`
	Result    string `json:"result"`
	Notes     string `json:"notes,omitempty"` // figures: throughput, curves
}

var rowFile sync.Mutex

// newRow starts t's row; the test fills in what it learns, and the row is written with
// the test's result when it ends.
func newRow(t *testing.T, scenario, load, faults string) *scenarioRow {
	r := &scenarioRow{Scenario: scenario, Load: load, Faults: faults, BadInputs: "-"}
	path := os.Getenv(reliabilityEnv)
	if path == "" {
		return r
	}
	t.Cleanup(func() {
		switch {
		case t.Skipped():
			r.Result = "skipped"
		case t.Failed():
			r.Result = "FAIL"
		default:
			r.Result = "pass"
		}
		b, _ := json.Marshal(r)
		rowFile.Lock()
		defer rowFile.Unlock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("reliability row: %v", err)
			return
		}
		defer f.Close()
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Errorf("reliability row: %v", err)
		}
	})
	return r
}

// faultScenarios are the kill tests' faults, for their rows.
var faultScenarios = map[string]string{
	"TestKillHubDuringTransfers":         "kill -9 of the hub, restarted",
	"TestKillOutletNodeDuringTransfers":  "kill -9 of the outlet's node, restarted",
	"TestKillInletNodeDuringTransfers":   "kill -9 of the inlet's node, restarted",
	"TestHubStoreRestartDuringTransfers": "the hub's PostgreSQL stopped 3s and started, 10s credentials",
	"TestTargetRestartDuringTransfers":   "the outlet's target stopped (resets) and started",
}

// envSize reads a byte count from the environment: a number with an optional KiB, MiB or
// GiB suffix; def when unset.
func envSize(t *testing.T, name string, def int64) int64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if s, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = s, m
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive byte count such as 32MiB or 1GiB", name, os.Getenv(name))
	}
	return n * mult
}

// sizeText is n bytes in the table's words.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
