package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	for _, tc := range []struct {
		line     string
		p50, p99 float64
		ok       bool
	}{
		{"ok rr count=3000 size=64 p50_us=106.2 p99_us=250.0", 106.2, 250, true},
		{"ok connect count=300 p50_us=43800.5 p99_us=44000.0", 43800.5, 44000, true},
		{"blast: dial tcp 127.0.0.1:20052: connection refused", 0, 0, false},
	} {
		p50, p99, err := percentiles(tc.line)
		if (err == nil) != tc.ok || p50 != tc.p50 || p99 != tc.p99 {
			t.Errorf("percentiles(%q) = %v, %v, %v; want %v, %v, ok=%v", tc.line, p50, p99, err, tc.p50, tc.p99, tc.ok)
		}
	}
}

func TestLatency(t *testing.T) {
	for _, tc := range []struct {
		us   float64
		want string
	}{{7.25, "7.2 us"}, {152.4, "152 us"}, {3600, "3.60 ms"}, {43800, "43.8 ms"}, {math.NaN(), "-"}} {
		if got := latency(tc.us); got != tc.want {
			t.Errorf("latency(%v) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{{0.3, 0.5}, {1, 1}, {1.2, 2}, {6.8, 10}, {34, 50}} {
		if got := niceStep(tc.x); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

// sample is a run as the report sees it: most modes measured, one skipped, one failed.
func scaled(r result, perSec, inKiB, outKiB float64) result {
	r.ConnPerSec, r.InletKiBPerConn, r.OutletKiBPerConn = perSec, inKiB, outKiB
	return r
}

func withTPS(r result, tps float64) result {
	r.TPS = tps
	return r
}

func sample() []result {
	row := func(key string, up, down, rtt, conn float64) result {
		r := newResult(*findMode(key))
		r.Status, r.UpGbps, r.DownGbps, r.RTTus, r.Connectus = statusOK, up, down, rtt, conn
		return r
	}
	skipped := newResult(*findMode("wireguard"))
	skipped.Status, skipped.Note = statusSkipped, "wireguard-go not found"
	failed := newResult(*findMode("socat"))
	failed.Status, failed.Note = statusFailed, "setup: socat in A: nothing listens | on port 20041"
	return []result{
		row("raw", 18.2, 18.9, 7, 78),
		withTPS(row("ssh", 8.0, 5.1, 152, 327), 4000),
		row("stunnel", 8.2, 8.3, 164, 3600),
		skipped,
		row("nebula", 3, 2.5, 180, 400),
		failed,
		withTPS(scaled(row("adjacent", 12, 10, 100, 300), 6200, 9.5, 40), 5000),
		withTPS(row("adjacent-tun", 9, 8, 110, 320), 2000),
		withTPS(scaled(row("adjacent-raw", 13, 11, 66, 280), 12000, 0.5, 2.5), 6000),
		withTPS(row("adjacent-hub", 6, 4.5, 250, 1500), 3000),
		row("ssh-relay", 4.5, 4.5, 331, 43000),
	}
}

func TestGoals(t *testing.T) {
	want := map[string]string{
		"direct portal Gbit/s A->B / max(ssh -L, stunnel)":                      "1.46x met",
		"direct portal Gbit/s B->A / max(ssh -L, stunnel)":                      "1.20x met",
		"direct portal RTT p50 / ssh -L":                                        "0.66x met",
		"direct portal connect+first RTT p50 / ssh -L":                          "0.92x met",
		"via hub Gbit/s A->B / ssh relay shape":                                 "1.33x met",
		"via hub Gbit/s B->A / ssh relay shape":                                 "1.00x missed",
		"via hub connect+first RTT p50":                                         "1.50 ms met",
		"plain TCP new connections per second, 32 clients (the kernels' bound)": "- not measured",
		"direct portal new connections per second, 32 clients":                  "6200/s met",
		"node memory per idle connection (10,000) at the inlet":                 "9.5 KiB met",
		"node memory per idle connection (10,000) at the outlet":                "40.0 KiB missed",
		"system calls per frame at the inlet, bulk A->B":                        "- not measured",
		"system calls per frame at the outlet, bulk A->B":                       "- not measured",
		"transparent Gbit/s A->B / direct portal":                               "0.75x met",
		"transparent Gbit/s B->A / direct portal":                               "0.80x met",
		"transparent Gbit/s A->B / wireguard-go":                                "- not measured",
		"transparent Gbit/s B->A / wireguard-go":                                "- not measured",
		"transparent RTT p50 / direct portal":                                   "1.10x met",
		"transparent connect+first RTT p50 / direct portal":                     "1.07x ",
		"transparent Gbit/s A->B / Nebula":                                      "3.00x ",
		"transparent Gbit/s B->A / Nebula":                                      "3.20x ",
		"direct portal pgbench -S tps / ssh -L":                                 "1.25x met",
		"transparent pgbench -S tps / ssh -L":                                   "0.50x ",
		"via hub pgbench -S tps / ssh relay shape":                              "- not measured",
		"packet mode RTT p50 / direct portal":                                   "0.66x met",
		"packet mode RTT p50 / transparent":                                     "0.60x met",
		"packet mode connect+first RTT p50 / ssh -L":                            "0.86x met",
		"packet mode Gbit/s A->B / direct portal":                               "1.08x met",
		"packet mode Gbit/s B->A / direct portal":                               "1.10x met",
		"packet mode Gbit/s A->B / wireguard-go":                                "- not measured",
		"packet mode Gbit/s B->A / wireguard-go":                                "- not measured",
		"packet mode memory per idle flow (10,000) at the inlet":                "0.5 KiB met",
		"packet mode memory per idle flow (10,000) at the outlet":               "2.5 KiB missed",
		"packet mode new flows per second, 32 clients":                          "12000/s met",
		"packet mode pgbench -S tps / ssh -L":                                   "1.50x met",
	}
	gs := goals(sample())
	if len(gs) != len(want) {
		t.Fatalf("goals: %d, want %d", len(gs), len(want))
	}
	for _, g := range gs {
		if got := g.value() + " " + g.verdict(); got != want[g.Name] {
			t.Errorf("goal %q = %q, want %q", g.Name, got, want[g.Name])
		}
	}
	if g := goals(nil)[0]; g.verdict() != "not measured" {
		t.Errorf("goal with no rows = %q, want not measured", g.verdict())
	}
}

func TestReportFiles(t *testing.T) {
	h := header{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Kernel: "6.1.0", CPUs: 2, Took: 100 * time.Second, Method: "one stream"}
	rs := sample()

	// The chart is well-formed XML with a bar per measured value and the notes of the rest.
	svg := chart(h, rs)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	if n := strings.Count(svg, "<title>"); n != 9*4+5 {
		t.Errorf("chart has %d bars, want %d", n, 9*4+5)
	}
	for _, s := range []string{"skipped: wireguard-go not found", "43.0 ms", "Gbit/s", "transactions/s", ">5000<"} {
		if !strings.Contains(svg, s) {
			t.Errorf("chart lacks %q", s)
		}
	}

	var md strings.Builder
	writeMarkdown(&md, h, rs, goals(rs))
	for _, s := range []string{"| stunnel, TLS 1.3, both sides | direct | 8.20 | 8.30 | 164 us | 3.60 ms | - | - |  |",
		"| adjacent, direct portal | direct | 12.00 | 10.00 | 100 us | 300 us | 5000 | 1.25x |  |",
		"| Nebula, AES-256-GCM | direct | 3.00 | 2.50 | 180 us | 400 us | - | - |  |", `nothing listens \| on port`, "2 CPUs", "kernel 6.1.0"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}

	js, err := resultsJSON(h, rs, goals(rs))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Modes []struct {
			Key  string   `json:"key"`
			Gbps *float64 `json:"gbps_a_to_b"`
		} `json:"modes"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Modes[3].Key != "wireguard" || doc.Modes[3].Gbps != nil || *doc.Modes[0].Gbps != 18.2 ||
		doc.Modes[4].Key != "nebula" || *doc.Modes[4].Gbps != 3 {
		t.Errorf("results.json modes = %s", js)
	}
}

func TestParseMeasures(t *testing.T) {
	all, err := parseMeasures(strings.Join(measureNames, ","))
	if err != nil || len(all) != len(measureNames) || !all["tps"] {
		t.Errorf("parseMeasures(default) = %v, %v; want every measure", all, err)
	}
	got, err := parseMeasures("rtt, tps")
	if err != nil || len(got) != 2 || !got["rtt"] || !got["tps"] {
		t.Errorf(`parseMeasures("rtt, tps") = %v, %v`, got, err)
	}
	for _, bad := range []string{"tpss", "", ","} {
		if _, err := parseMeasures(bad); err == nil {
			t.Errorf("parseMeasures(%q) accepted", bad)
		}
	}
	b := &bench{cfg: config{seconds: 3, measures: got}}
	if m := b.method(); !strings.Contains(m, "pgbench -S -c 8 -j 2 -T 3") || strings.Contains(m, "iperf3") {
		t.Errorf("method with rtt and tps = %q", m)
	}
}
