package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// goal is one of issue 6's goals, computed from the results.
type goal struct {
	Name   string
	Value  float64 // NaN when a mode it needs has no number
	Unit   string  // "x" for ratios, "ms"
	Target string
	Met    func(v float64) bool
}

// goals computes issue 6's ratios from the rows.
func goals(rs []result) []goal {
	get := func(key string) result {
		for _, r := range rs {
			if r.Key == key {
				return r
			}
		}
		return newResult(mode{key: key})
	}
	adj, hub, ssh, stunnel, relay, plain := get("adjacent"), get("adjacent-hub"), get("ssh"), get("stunnel"), get("ssh-relay"), get("raw")
	tun, wg, nebula, raw := get("adjacent-tun"), get("wireguard"), get("nebula"), get("adjacent-raw")
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	under := func(x float64) func(float64) bool { return func(v float64) bool { return v < x } }
	reported := func(float64) bool { return true }
	return []goal{
		{"direct portal Gbit/s A->B / max(ssh -L, stunnel)", adj.UpGbps / nanMax(ssh.UpGbps, stunnel.UpGbps), "x", ">= 1.2x", atLeast(1.2)},
		{"direct portal Gbit/s B->A / max(ssh -L, stunnel)", adj.DownGbps / nanMax(ssh.DownGbps, stunnel.DownGbps), "x", ">= 1.2x", atLeast(1.2)},
		{"direct portal RTT p50 / ssh -L", adj.RTTus / ssh.RTTus, "x", "<= 0.8x", atMost(0.8)},
		{"direct portal connect+first RTT p50 / ssh -L", adj.Connectus / ssh.Connectus, "x", "<= 1.0x", atMost(1)},
		{"via hub Gbit/s A->B / ssh relay shape", hub.UpGbps / relay.UpGbps, "x", ">= 1.2x", atLeast(1.2)},
		{"via hub Gbit/s B->A / ssh relay shape", hub.DownGbps / relay.DownGbps, "x", ">= 1.2x", atLeast(1.2)},
		{"via hub connect+first RTT p50", hub.Connectus / 1000, "ms", "< 2 ms", under(2)},
		{"plain TCP new connections per second, 32 clients (the kernels' bound)", plain.ConnPerSec, "/s", "reported", reported},
		{"direct portal new connections per second, 32 clients", adj.ConnPerSec, "/s", ">= 5000/s", atLeast(5000)},
		{"node memory per idle connection (10,000) at the inlet", adj.InletKiBPerConn, "KiB", "<= 32 KiB", atMost(32)},
		{"node memory per idle connection (10,000) at the outlet", adj.OutletKiBPerConn, "KiB", "<= 32 KiB", atMost(32)},
		{"system calls per frame at the inlet, bulk A->B", adj.InletSyscallsPerFrame, "/frame", "reported", reported},
		{"system calls per frame at the outlet, bulk A->B", adj.OutletSyscallsPerFrame, "/frame", "reported", reported},
		// Issue 7: the transparent inlet against the classic one and wireguard-go.
		{"transparent Gbit/s A->B / direct portal", tun.UpGbps / adj.UpGbps, "x", ">= 0.7x", atLeast(0.7)},
		{"transparent Gbit/s B->A / direct portal", tun.DownGbps / adj.DownGbps, "x", ">= 0.7x", atLeast(0.7)},
		{"transparent Gbit/s A->B / wireguard-go", tun.UpGbps / wg.UpGbps, "x", ">= 2x", atLeast(2)},
		{"transparent Gbit/s B->A / wireguard-go", tun.DownGbps / wg.DownGbps, "x", ">= 2x", atLeast(2)},
		{"transparent RTT p50 / direct portal", tun.RTTus / adj.RTTus, "x", "<= 1.2x", atMost(1.2)},
		{"transparent connect+first RTT p50 / direct portal", tun.Connectus / adj.Connectus, "x", "reported", reported},
		// Issue 17: Nebula is the other overlay a user would pick; no target was set.
		{"transparent Gbit/s A->B / Nebula", tun.UpGbps / nebula.UpGbps, "x", "reported", reported},
		{"transparent Gbit/s B->A / Nebula", tun.DownGbps / nebula.DownGbps, "x", "reported", reported},
		// Issues 13 and 15: many small transactions, pgbench select-only with 8 clients.
		{"direct portal pgbench -S tps / ssh -L", adj.TPS / ssh.TPS, "x", ">= 1.2x", atLeast(1.2)},
		{"transparent pgbench -S tps / ssh -L", tun.TPS / ssh.TPS, "x", "reported", reported},
		{"via hub pgbench -S tps / ssh relay shape", hub.TPS / relay.TPS, "x", "reported", reported},
		// Issue 15: the packet-mode inlet (--tun --raw).
		{"packet mode RTT p50 / direct portal", raw.RTTus / adj.RTTus, "x", "<= 0.8x", atMost(0.8)},
		{"packet mode RTT p50 / transparent", raw.RTTus / tun.RTTus, "x", "<= 0.6x", atMost(0.6)},
		{"packet mode connect+first RTT p50 / ssh -L", raw.Connectus / ssh.Connectus, "x", "<= 1.0x", atMost(1)},
		{"packet mode Gbit/s A->B / direct portal", raw.UpGbps / adj.UpGbps, "x", ">= 1.0x", atLeast(1)},
		{"packet mode Gbit/s B->A / direct portal", raw.DownGbps / adj.DownGbps, "x", ">= 1.0x", atLeast(1)},
		{"packet mode Gbit/s A->B / wireguard-go", raw.UpGbps / wg.UpGbps, "x", ">= 2.5x", atLeast(2.5)},
		{"packet mode Gbit/s B->A / wireguard-go", raw.DownGbps / wg.DownGbps, "x", ">= 2.5x", atLeast(2.5)},
		{"packet mode memory per idle flow (10,000) at the inlet", raw.InletKiBPerConn, "KiB", "<= 2 KiB", atMost(2)},
		{"packet mode memory per idle flow (10,000) at the outlet", raw.OutletKiBPerConn, "KiB", "<= 2 KiB", atMost(2)},
		{"packet mode new flows per second, 32 clients", raw.ConnPerSec, "/s", ">= 10000/s", atLeast(10000)},
		{"packet mode pgbench -S tps / ssh -L", raw.TPS / ssh.TPS, "x", ">= 1.2x", atLeast(1.2)},
	}
}

// nanMax is the larger of the numbers present, NaN if neither is.
func nanMax(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return math.Max(a, b)
}

func (g goal) value() string {
	if math.IsNaN(g.Value) || math.IsInf(g.Value, 0) {
		return "-"
	}
	switch g.Unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", g.Value)
	case "KiB":
		return fmt.Sprintf("%.1f KiB", g.Value)
	case "/s":
		return fmt.Sprintf("%.0f/s", g.Value)
	case "/frame":
		return fmt.Sprintf("%.2f", g.Value)
	}
	return fmt.Sprintf("%.2fx", g.Value)
}

func (g goal) verdict() string {
	switch {
	case math.IsNaN(g.Value) || math.IsInf(g.Value, 0):
		return "not measured"
	case g.Target == "reported":
		return ""
	case g.Met(g.Value):
		return "met"
	}
	return "missed"
}

// header is what the run was: when, where, how.
type header struct {
	Date     time.Time
	Kernel   string
	CPUs     int
	Took     time.Duration
	Method   string
	Versions []string
}

func (b *bench) header() header {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return header{
		Date:     time.Now().UTC(),
		Kernel:   strings.TrimSpace(string(kernel)),
		CPUs:     runtime.NumCPU(),
		Took:     time.Since(b.started).Round(time.Second),
		Method:   b.method(),
		Versions: b.tools.versions(context.Background()),
	}
}

// method says how each measure was taken, those -measures chose.
func (b *bench) method() string {
	var parts []string
	c := b.cfg
	if c.wants("throughput") {
		parts = append(parts, fmt.Sprintf("one iperf3 stream for %d s each way", c.seconds))
	}
	if c.wants("rtt") {
		parts = append(parts, fmt.Sprintf("RTT: %d round trips of 64 bytes", c.rrCount))
	}
	if c.wants("connect") {
		parts = append(parts, fmt.Sprintf("connect: %d connects, each timed from connect() to the first 64-byte response, the close after (internal/connprobe)", c.connCount))
	}
	if c.wants("tps") {
		parts = append(parts, fmt.Sprintf("tps: pgbench -S -c %d -j %d -T %d against PostgreSQL in B (scale 1), the ratio column against ssh -L",
			pgClients, pgThreads, c.seconds))
	}
	if c.rounds > 1 {
		parts = append(parts, fmt.Sprintf("each figure the median of %d rounds, the modes taking turns", c.rounds))
	}
	parts = append(parts, "direct modes in namespaces A and B joined by one veth pair, relay modes in A and B each joined only to a hub H that does not forward")
	return strings.Join(parts, "; ")
}

// count prints a rate such as transactions per second: "-" when missing.
func count(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

// tpsRatio is r's transactions per second against ssh -L's in the same run.
func tpsRatio(r result, rs []result) string {
	for _, s := range rs {
		if s.Key == "ssh" {
			if v := r.TPS / s.TPS; !math.IsNaN(v) && !math.IsInf(v, 0) {
				return fmt.Sprintf("%.2fx", v)
			}
		}
	}
	return "-"
}

// report prints the table and writes results.md, results.json and results.svg.
func (b *bench) report(rs []result) error {
	h := b.header()
	gs := goals(rs)
	writeText(os.Stdout, h, rs, gs)
	var md strings.Builder
	writeMarkdown(&md, h, rs, gs)
	files := map[string][]byte{
		"results.md":  []byte(md.String()),
		"results.svg": []byte(chart(h, rs)),
	}
	js, err := resultsJSON(h, rs, gs)
	if err != nil {
		return err
	}
	files["results.json"] = js
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(b.out, name), data, 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	fmt.Printf("\nwrote %s/results.md, results.svg and results.json; logs in %s/logs\n", b.cfg.out, b.cfg.out)
	return nil
}

func gbps(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// latency prints microseconds as issue 6 does: "152 us", "3.6 ms".
func latency(us float64) string {
	switch {
	case math.IsNaN(us):
		return "-"
	case us < 10:
		return fmt.Sprintf("%.1f us", us)
	case us < 1000:
		return fmt.Sprintf("%.0f us", us)
	case us < 10000:
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.1f ms", us/1000)
}

// note is the last column: why a row has no numbers.
func note(r result) string {
	if r.Status == statusOK {
		return ""
	}
	return r.Status + ": " + r.Note
}

func (h header) line() string {
	return fmt.Sprintf("%s, kernel %s, %d CPUs, run took %s", h.Date.Format("2006-01-02 15:04 UTC"), h.Kernel, h.CPUs, h.Took)
}

func writeText(w io.Writer, h header, rs []result, gs []goal) {
	fmt.Fprintf(w, "\nadjacent side by side: %s\n%s\n\n", h.line(), h.Method)
	rows := [][]string{{"mode", "topology", "Gbit/s A->B", "Gbit/s B->A", "RTT p50", "connect+first RTT p50", "tps", "tps/ssh -L", ""}}
	for _, r := range rs {
		rows = append(rows, []string{r.Name, r.Topology, gbps(r.UpGbps), gbps(r.DownGbps), latency(r.RTTus), latency(r.Connectus),
			count(r.TPS), tpsRatio(r, rs), note(r)})
	}
	align(w, rows, "llrrrrrrl")
	fmt.Fprintln(w, "\ngoals (issue 6):")
	rows = nil
	for _, g := range gs {
		rows = append(rows, []string{"  " + g.Name, g.value(), g.Target, g.verdict()})
	}
	align(w, rows, "lrll")
}

// align prints rows as columns, each left (l) or right (r) aligned.
func align(w io.Writer, rows [][]string, how string) {
	width := make([]int, len(how))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if how[i] == 'r' {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
			line.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
	}
}

func writeMarkdown(w io.Writer, h header, rs []result, gs []goal) {
	fmt.Fprintf(w, "# adjacent side by side\n\n%s.\n\n%s.\n\n", h.line(), strings.ToUpper(h.Method[:1])+h.Method[1:])
	fmt.Fprintln(w, "| mode | topology | Gbit/s A->B | Gbit/s B->A | RTT p50 | connect+first RTT p50 | tps | tps/ssh -L | note |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(r.Name), r.Topology, gbps(r.UpGbps), gbps(r.DownGbps),
			latency(r.RTTus), latency(r.Connectus), count(r.TPS), tpsRatio(r, rs), mdEscape(note(r)))
	}
	fmt.Fprintln(w, "\n## Goals (issue 6)\n\n| goal | measured | target | |\n|---|---:|---|---|")
	for _, g := range gs {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, g.value(), g.Target, g.verdict())
	}
	fmt.Fprint(w, "\n![throughput and latency per mode](results.svg)\n\n## Versions\n\n")
	for _, v := range h.Versions {
		fmt.Fprintf(w, "- %s\n", mdEscape(v))
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// resultsJSON is the same data for tools; missing numbers are null.
func resultsJSON(h header, rs []result, gs []goal) ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	type row struct {
		Key          string   `json:"key"`
		Name         string   `json:"name"`
		Topology     string   `json:"topology"`
		Status       string   `json:"status"`
		Note         string   `json:"note,omitempty"`
		GbpsAtoB     *float64 `json:"gbps_a_to_b"`
		GbpsBtoA     *float64 `json:"gbps_b_to_a"`
		RTTp50us     *float64 `json:"rtt_p50_us"`
		RTTp99us     *float64 `json:"rtt_p99_us"`
		Connectp50us *float64 `json:"connect_p50_us"`
		Connectp99us *float64 `json:"connect_p99_us"`
		TPS          *float64 `json:"pgbench_select_tps"`
		ConnPerSec   *float64 `json:"connects_per_second,omitempty"`
		InletKiB     *float64 `json:"inlet_kib_per_idle_connection,omitempty"`
		OutletKiB    *float64 `json:"outlet_kib_per_idle_connection,omitempty"`
		InletSys     *float64 `json:"inlet_syscalls_per_frame,omitempty"`
		OutletSys    *float64 `json:"outlet_syscalls_per_frame,omitempty"`
		FrameBytes   *float64 `json:"bytes_per_frame,omitempty"`
		SetupSeconds float64  `json:"setup_seconds"`
		MeasureSecs  float64  `json:"measure_seconds"`
	}
	type goalJSON struct {
		Name    string   `json:"name"`
		Value   *float64 `json:"value"`
		Unit    string   `json:"unit"`
		Target  string   `json:"target"`
		Verdict string   `json:"verdict"`
	}
	doc := struct {
		Date     time.Time  `json:"date"`
		Kernel   string     `json:"kernel"`
		CPUs     int        `json:"cpus"`
		Seconds  float64    `json:"run_seconds"`
		Method   string     `json:"method"`
		Versions []string   `json:"versions"`
		Modes    []row      `json:"modes"`
		Goals    []goalJSON `json:"goals"`
	}{Date: h.Date, Kernel: h.Kernel, CPUs: h.CPUs, Seconds: h.Took.Seconds(), Method: h.Method, Versions: h.Versions}
	for _, r := range rs {
		doc.Modes = append(doc.Modes, row{r.Key, r.Name, r.Topology, r.Status, r.Note,
			num(r.UpGbps), num(r.DownGbps), num(r.RTTus), num(r.RTTp99us), num(r.Connectus), num(r.Connp99us), num(r.TPS),
			num(r.ConnPerSec), num(r.InletKiBPerConn), num(r.OutletKiBPerConn),
			num(r.InletSyscallsPerFrame), num(r.OutletSyscallsPerFrame), num(r.BytesPerFrame),
			math.Round(r.SetupSecs*10) / 10, math.Round(r.MeasureSecs*10) / 10})
	}
	for _, g := range gs {
		doc.Goals = append(doc.Goals, goalJSON{g.Name, num(g.Value), g.Unit, g.Target, g.verdict()})
	}
	return json.MarshalIndent(doc, "", "  ")
}
