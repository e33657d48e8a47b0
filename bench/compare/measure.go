package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// measure runs the same measurements for every mode, from the client namespace, those
// -measures chose: one iperf3 stream A->B and B->A, 64-byte round trips, connect plus
// first round trip, and pgbench's transactions per second against pg (nil when PostgreSQL
// could not be started: no tps then). It stops at the first failure and keeps what it
// measured before.
func (b *bench) measure(ctx context.Context, ep endpoints, r *result, pg *postgres) error {
	if err := b.waitPath(ctx, ep, 30*time.Second); err != nil {
		return err
	}
	if b.tools.path["iperf3"] != "" && b.cfg.wants("throughput") {
		up, err := b.iperf(ctx, ep, false)
		if err != nil {
			return fmt.Errorf("iperf3 A->B: %w", err)
		}
		r.UpGbps = up
		down, err := b.iperf(ctx, ep, true)
		if err != nil {
			return fmt.Errorf("iperf3 B->A: %w", err)
		}
		r.DownGbps = down
	}
	if b.cfg.wants("rtt") {
		out, err := b.blast(ctx, ep.ns, 2*time.Minute, "rr", "-to", ep.blast, "-count", strconv.Itoa(b.cfg.rrCount), "-size", "64")
		if err != nil {
			return fmt.Errorf("blast rr: %w", err)
		}
		if r.RTTus, r.RTTp99us, err = percentiles(out); err != nil {
			return fmt.Errorf("blast rr: %w", err)
		}
	}
	if b.cfg.wants("connect") {
		out, err := b.blast(ctx, ep.ns, 2*time.Minute, "connect", "-to", ep.blast, "-count", strconv.Itoa(b.cfg.connCount))
		if err != nil {
			return fmt.Errorf("blast connect: %w", err)
		}
		if r.Connectus, r.Connp99us, err = percentiles(out); err != nil {
			return fmt.Errorf("blast connect: %w", err)
		}
	}
	if b.cfg.wants("tps") && pg != nil {
		tps, err := b.measureTPS(ctx, pg, ep)
		if err != nil {
			return err
		}
		r.TPS = tps
	}
	return nil
}

// waitPath waits until ten round trips through the blast endpoint succeed: the tunnel is up
// end to end (ssh connected, the portal's channels established).
func (b *bench) waitPath(ctx context.Context, ep endpoints, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		out, err := b.blast(ctx, ep.ns, 10*time.Second, "rr", "-to", ep.blast, "-count", "10", "-size", "64")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no round trip through %s after %v: %s", ep.blast, limit, firstLine(out))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// blast runs the traffic tool in ns and returns its one line of output.
func (b *bench) blast(ctx context.Context, ns *netns.Namespace, limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := ns.CommandContext(ctx, b.tools.blast, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		if ctx.Err() != nil {
			return s, fmt.Errorf("no answer within %v", limit)
		}
		return s, fmt.Errorf("%v: %s", err, firstLine(s))
	}
	return s, nil
}

// percentiles reads p50_us and p99_us from blast's result line.
func percentiles(line string) (p50, p99 float64, err error) {
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	p50, err1 := strconv.ParseFloat(fields["p50_us"], 64)
	p99, err2 := strconv.ParseFloat(fields["p99_us"], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("unexpected output %q", line)
	}
	return p50, p99, nil
}

// iperf runs one iperf3 stream for the configured time, A->B or (reverse) B->A, and returns
// the receiver's Gbit/s. A server still busy with the previous test is retried.
func (b *bench) iperf(ctx context.Context, ep endpoints, reverse bool) (float64, error) {
	host, port, _ := strings.Cut(ep.iperf, ":")
	args := []string{"-c", host, "-p", port, "-t", strconv.Itoa(b.cfg.seconds), "-J"}
	if reverse {
		args = append(args, "-R")
	}
	for attempt := 0; ; attempt++ {
		gbps, err := b.iperfOnce(ctx, ep.ns, args)
		if err == nil || attempt == 2 || ctx.Err() != nil || !strings.Contains(err.Error(), "busy") {
			return gbps, err
		}
		time.Sleep(time.Second)
	}
}

func (b *bench) iperfOnce(ctx context.Context, ns *netns.Namespace, args []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.seconds+25)*time.Second)
	defer cancel()
	cmd := ns.CommandContext(ctx, b.tools.path["iperf3"], args...)
	cmd.WaitDelay = time.Second
	out, runErr := cmd.Output()
	var report struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		if ctx.Err() != nil {
			return 0, errors.New("no result within the time limit")
		}
		return 0, fmt.Errorf("%v: unreadable output %q", runErr, firstLine(string(out)))
	}
	if report.Error != "" {
		return 0, errors.New(report.Error)
	}
	if runErr != nil {
		return 0, runErr
	}
	if report.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("no bits received")
	}
	return report.End.SumReceived.BitsPerSecond / 1e9, nil
}
