package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartW    = 1040
	labelW    = 260 // mode names, right-aligned against the plot
	plotX     = labelW + 14
	plotW     = chartW - plotX - 110 // room for the value after the longest bar
	barH      = 14
	rowH      = 2*barH + 14
	panelHead = 52 // panel title and legend
	axisH     = 46 // ticks, tick labels and the axis title
)

// series is one kind of bar in a panel.
type series struct {
	label string
	color string
	value func(result) float64
	text  func(float64) string
}

// chart draws the results as panels of horizontal grouped bars, one group per mode:
// throughput both ways on a linear axis, the two latencies on a log axis (they span
// microseconds to tens of milliseconds), and pgbench's transactions per second on a linear
// axis when the run measured them.
func chart(h header, rs []result) string {
	var sb strings.Builder
	panels := 2
	tps := slices.ContainsFunc(rs, func(r result) bool { return !math.IsNaN(r.TPS) })
	if tps {
		panels++
	}
	height := 70 + panels*(panelHead+len(rs)*rowH+axisH) + 10*(panels-1) + 20
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">`+"\n",
		chartW, height, chartW, height)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, height)
	title := "adjacent side by side: one TCP stream, 64-byte round trips, connects"
	if tps {
		title += ", pgbench"
	}
	text(&sb, 20, 30, "start", `font-size="18" font-weight="bold"`, title)
	text(&sb, 20, 52, "start", `fill="#555"`, h.line())

	y := 70
	y = panel(&sb, y, rs, "Throughput, one iperf3 stream (Gbit/s, higher is better)", "Gbit/s", false, []series{
		{"A->B", "#4C78A8", func(r result) float64 { return r.UpGbps }, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
		{"B->A", "#F58518", func(r result) float64 { return r.DownGbps }, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
	})
	y = panel(&sb, y+10, rs, "Latency p50 (log scale, lower is better)", "time, p50 (log scale)", true, []series{
		{"64-byte round trip", "#54A24B", func(r result) float64 { return r.RTTus }, latencyMicro},
		{"connect + first round trip", "#B279A2", func(r result) float64 { return r.Connectus }, latencyMicro},
	})
	if tps {
		panel(&sb, y+10, rs, "Transactions per second, pgbench -S, 8 clients (higher is better)", "transactions/s", false, []series{
			{"select-only", "#E45756", func(r result) float64 { return r.TPS }, count},
		})
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}

// panel draws one panel from y, its axis titled axis, and returns the y below it.
func panel(sb *strings.Builder, y int, rs []result, title, axis string, logScale bool, ss []series) int {
	text(sb, 20, y+20, "start", `font-size="15" font-weight="bold"`, title)
	lx := plotX
	for _, s := range ss {
		fmt.Fprintf(sb, `<rect x="%d" y="%d" width="14" height="14" fill="%s"/>`+"\n", lx, y+30, s.color)
		text(sb, lx+20, y+42, "start", "", s.label)
		lx += 40 + 8*len(s.label)
	}
	top := y + panelHead

	// The axis: linear from 0 to a round maximum, or decades of microseconds.
	maxV, minV := 0.0, math.Inf(1)
	for _, r := range rs {
		for _, s := range ss {
			if v := s.value(r); !math.IsNaN(v) && v > 0 {
				maxV, minV = math.Max(maxV, v), math.Min(minV, v)
			}
		}
	}
	var pos func(v float64) float64
	type tick struct {
		v     float64
		label string
	}
	var ticks []tick
	if logScale {
		lo, hi := 0.0, 3.0 // 1 us .. 1 ms at least
		if maxV > 0 {
			lo = math.Min(math.Floor(math.Log10(minV)), 1)
			lo = math.Max(lo, 0)
			hi = math.Max(math.Ceil(math.Log10(maxV)), lo+1)
		}
		pos = func(v float64) float64 {
			return float64(plotW) * (math.Log10(math.Max(v, math.Pow(10, lo))) - lo) / (hi - lo)
		}
		for d := lo; d <= hi; d++ {
			ticks = append(ticks, tick{math.Pow(10, d), decade(d)})
		}
	} else {
		step := niceStep(math.Max(maxV, 1) / 5)
		top := math.Ceil(math.Max(maxV, 1)/step) * step
		pos = func(v float64) float64 { return float64(plotW) * v / top }
		for v := 0.0; v <= top+step/2; v += step {
			ticks = append(ticks, tick{v, strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")})
		}
	}

	// Stripes, then grid lines, then the bars over them.
	bottom := top + len(rs)*rowH
	for i := range rs {
		if i%2 == 0 {
			fmt.Fprintf(sb, `<rect x="10" y="%d" width="%d" height="%d" fill="#f4f4f4"/>`+"\n", top+i*rowH, chartW-20, rowH)
		}
	}
	for _, t := range ticks {
		x := float64(plotX) + pos(t.v)
		fmt.Fprintf(sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ccc" stroke-width="1"/>`+"\n", x, top, x, bottom+5)
		text(sb, int(x), bottom+20, "middle", `font-size="12"`, t.label)
	}
	for i, r := range rs {
		gy := top + i*rowH
		style := ""
		if strings.HasPrefix(r.Key, "adjacent") {
			style = `font-weight="bold"`
		}
		if r.Status != statusOK {
			style += ` fill="#888"`
		}
		text(sb, labelW, gy+rowH/2+5, "end", style, r.Name)
		drawn := false
		for j, s := range ss {
			v := s.value(r)
			if math.IsNaN(v) {
				continue
			}
			drawn = true
			by := gy + 7 + j*barH
			w := math.Max(pos(v), 1)
			fmt.Fprintf(sb, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`+"\n",
				plotX, by, w, barH-1, s.color, html.EscapeString(r.Name+", "+s.label), html.EscapeString(s.text(v)))
			text(sb, plotX+int(w)+5, by+barH-3, "start", `font-size="12"`, s.text(v))
		}
		if !drawn {
			msg := r.Status
			if r.Note != "" {
				msg += ": " + r.Note
			}
			if len(msg) > 110 {
				msg = msg[:107] + "..."
			}
			text(sb, plotX+6, gy+rowH/2+5, "start", `fill="#888" font-style="italic"`, msg)
		}
	}

	fmt.Fprintf(sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", plotX, top, plotX, bottom)
	fmt.Fprintf(sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", plotX, bottom, plotX+plotW, bottom)
	text(sb, plotX+plotW/2, bottom+40, "middle", `fill="#333"`, axis)
	return bottom + axisH
}

// latencyMicro is latency with the micro sign, as the axis labels have it.
func latencyMicro(us float64) string { return strings.Replace(latency(us), " us", " µs", 1) }

// decade labels 10^d microseconds.
func decade(d float64) string {
	us := math.Pow(10, d)
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 1e6:
		return fmt.Sprintf("%.0f ms", us/1000)
	}
	return fmt.Sprintf("%.0f s", us/1e6)
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func text(sb *strings.Builder, x, y int, anchor, attrs, s string) {
	fmt.Fprintf(sb, `<text x="%d" y="%d" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, attrs, html.EscapeString(s))
}
