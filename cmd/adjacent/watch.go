package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

// rates are the live rates of one watch frame: per inlet, outlet and relay, bytes per second
// over the last interval.
type rates struct {
	Time     time.Time      `json:"time"`
	Interval api.Duration   `json:"interval"`
	Inlets   []resourceRate `json:"inlets"`
	Outlets  []resourceRate `json:"outlets"`
	Relays   []resourceRate `json:"relays"`
}

// resourceRate is one line of a watch frame. For a relay, In is what its clients sent
// through it, and Active its clients.
type resourceRate struct {
	Name   string  `json:"name"`
	Active int64   `json:"active"`
	In     float64 `json:"in_bytes_per_second"`
	Out    float64 `json:"out_bytes_per_second"`
}

// rateOf is the rate of a counter that went from before to now in d; a counter that went
// down (the resource was recreated) counts from zero.
func rateOf(before, now int64, d time.Duration) float64 {
	if now < before {
		before = 0
	}
	return float64(now-before) / d.Seconds()
}

// ratesBetween computes a frame from two status samples taken d apart.
func ratesBetween(prev, cur api.Status, d time.Duration, at time.Time) rates {
	r := rates{Time: at.UTC(), Interval: api.Duration(d), Inlets: []resourceRate{}, Outlets: []resourceRate{}, Relays: []resourceRate{}}
	inlets := map[string]api.Inlet{}
	for _, in := range prev.Inlets {
		inlets[in.Name] = in
	}
	for _, in := range cur.Inlets {
		p := inlets[in.Name]
		r.Inlets = append(r.Inlets, resourceRate{in.Name, in.Active, rateOf(p.BytesIn, in.BytesIn, d), rateOf(p.BytesOut, in.BytesOut, d)})
	}
	outlets := map[string]api.Outlet{}
	for _, o := range prev.Outlets {
		outlets[o.Name] = o
	}
	for _, o := range cur.Outlets {
		p := outlets[o.Name]
		r.Outlets = append(r.Outlets, resourceRate{o.Name, o.Active, rateOf(p.BytesIn, o.BytesIn, d), rateOf(p.BytesOut, o.BytesOut, d)})
	}
	relayBytes := func(rl api.Relay) int64 {
		var n uint64
		for _, c := range rl.Clients {
			n += c.Bytes
		}
		return int64(n)
	}
	relays := map[string]int64{}
	for _, rl := range prev.Relays {
		relays[rl.Name] = relayBytes(rl)
	}
	for _, rl := range cur.Relays {
		r.Relays = append(r.Relays, resourceRate{Name: rl.Name, Active: int64(len(rl.Clients)), In: rateOf(relays[rl.Name], relayBytes(rl), d)})
	}
	return r
}

func (r rates) text(w io.Writer) {
	fmt.Fprintf(w, "%s, rates over %s\n", r.Time.Format(time.RFC3339), r.Interval)
	var rows [][]string
	add := func(kind string, rs []resourceRate, active string) {
		for _, x := range rs {
			out := rate(uint64(x.Out), time.Second)
			if kind == "relay" {
				out = "-"
			}
			rows = append(rows, []string{kind, x.Name, strconv.FormatInt(x.Active, 10) + " " + active, rate(uint64(x.In), time.Second), out})
		}
	}
	add("inlet", r.Inlets, "active")
	add("outlet", r.Outlets, "active")
	add("relay", r.Relays, "clients")
	table(w, "No inlets, outlets or relays.", []string{"KIND", "NAME", "USE", "IN", "OUT"}, rows)
}

// watchStatus prints a frame of rates every interval, count times (0: until interrupted).
// With --output json each frame is one JSON object on its own line.
func (g *globals) watchStatus(cmd *cobra.Command, interval time.Duration, count int) error {
	if interval < 100*time.Millisecond {
		return usagef("--interval %v: want at least 100ms", interval)
	}
	var prev api.Status
	if err := g.get(cmd, "/v1/status", &prev); err != nil {
		return err
	}
	last := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-cmd.Context().Done():
			return nil
		case <-t.C:
		}
		var cur api.Status
		if err := g.get(cmd, "/v1/status", &cur); err != nil {
			return err
		}
		now := time.Now()
		r := ratesBetween(prev, cur, now.Sub(last).Round(time.Millisecond), now)
		prev, last = cur, now
		if g.output == "json" {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s\n", b)
			continue
		}
		if n > 0 {
			fmt.Fprintln(g.stdout)
		}
		r.text(g.stdout)
	}
	return nil
}
