package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
)

// idleConns is how many idle connections the memory measurement holds through one inlet.
const idleConns = 10000

// measureRate adds new connections per second from 32 clients to r, for every mode (plain
// TCP's is the bound the client's and server's kernels set); nothing unless -measures has
// scale.
func (b *bench) measureRate(ctx context.Context, ep endpoints, r *result) error {
	if !b.cfg.wants("scale") {
		return nil
	}
	out, err := b.blast(ctx, ep.ns, time.Minute, "rate", "-to", ep.blast, "-parallel", "32", "-seconds", "3")
	if err != nil {
		return fmt.Errorf("blast rate: %w", err)
	}
	if r.ConnPerSec, err = field(out, "per_second"); err != nil {
		return fmt.Errorf("blast rate: %w", err)
	}
	return nil
}

// measureScale adds the node memory (resident set) each idle connection costs at the inlet
// and at the outlet to r. Only modes whose endpoints name their nodes have it; nothing
// unless -measures has scale.
func (b *bench) measureScale(ctx context.Context, ep endpoints, r *result) error {
	if !b.cfg.wants("scale") {
		return nil
	}
	in, outlet, err := ep.show(ctx)
	if err != nil {
		return err
	}
	inPid, outPid := in.Pid, outlet.Pid
	time.Sleep(2 * time.Second) // let the rate test's sessions wind down
	in0, out0 := rss(inPid), rss(outPid)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := ep.ns.CommandContext(ctx, b.tools.blast, "idle", "-to", ep.blast, "-count", strconv.Itoa(idleConns))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close() // blast closes its connections and exits
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ok idle") {
		return fmt.Errorf("blast idle: %q %v", strings.TrimSpace(line), err)
	}
	time.Sleep(time.Second)
	in1, out1 := rss(inPid), rss(outPid)
	r.InletKiBPerConn = float64(in1-in0) / idleConns
	r.OutletKiBPerConn = float64(out1-out0) / idleConns
	progress("%s: %.0f connects/s; %d idle connections: %.1f KiB each at the inlet (%d -> %d KiB), %.1f KiB at the outlet (%d -> %d KiB)",
		r.Name, r.ConnPerSec, idleConns, r.InletKiBPerConn, in0, in1, r.OutletKiBPerConn, out0, out1)
	return nil
}

// show reads the node's process id and counters.
func (n *node) show(ctx context.Context) (api.NodeInfo, error) {
	out, err := n.run(ctx, "node", "show", "--output", "json")
	if err != nil {
		return api.NodeInfo{}, err
	}
	var info api.NodeInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Pid == 0 {
		return api.NodeInfo{}, fmt.Errorf("%s: node show without a pid: %v", n.name, err)
	}
	return info, nil
}

// show reads both portal nodes.
func (ep endpoints) show(ctx context.Context) (in, out api.NodeInfo, err error) {
	if in, err = ep.inlet.show(ctx); err == nil {
		out, err = ep.outlet.show(ctx)
	}
	return in, out, err
}

// rss is a process's resident set in KiB, 0 if it cannot be read.
func rss(pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kib
		}
	}
	return 0
}

// field reads key=value from blast's result line.
func field(line, key string) (float64, error) {
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %q", key, line)
}

// measureSyscalls counts the system calls of the inlet's and the outlet's node during an
// iperf3 stream A->B (perf stat on the raw_syscalls tracepoint) and divides them by the
// frames each moved in the same window, with the frames' average size; nothing unless
// -measures has syscalls.
func (b *bench) measureSyscalls(ctx context.Context, ep endpoints, r *result) error {
	perf := b.tools.path["perf"]
	if perf == "" || b.tools.path["iperf3"] == "" || !b.cfg.wants("syscalls") {
		return nil
	}
	host, port, _ := strings.Cut(ep.iperf, ":")
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	iperf := ep.ns.CommandContext(ictx, b.tools.path["iperf3"], "-c", host, "-p", port, "-t", "4")
	if err := iperf.Start(); err != nil {
		return err
	}
	defer iperf.Wait()
	time.Sleep(time.Second)
	in0, out0, err := ep.show(ctx)
	if err != nil {
		return err
	}
	var (
		counts [2]float64
		errs   [2]error
		wg     sync.WaitGroup
	)
	for i, pid := range []int{in0.Pid, out0.Pid} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = countSyscalls(ctx, perf, pid, 2*time.Second)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	in1, out1, err := ep.show(ctx)
	if err != nil {
		return err
	}
	sent := float64(in1.Transport.FramesOut - in0.Transport.FramesOut)
	received := float64(out1.Transport.FramesIn - out0.Transport.FramesIn)
	if sent == 0 || received == 0 {
		return errors.New("no frames moved while counting system calls")
	}
	r.InletSyscallsPerFrame, r.OutletSyscallsPerFrame = counts[0]/sent, counts[1]/received
	r.BytesPerFrame = float64(in1.Transport.BytesOut-in0.Transport.BytesOut) / sent
	progress("%s: iperf3 A->B in frames of %.1f KiB: %.2f system calls per frame at the inlet, %.2f at the outlet",
		r.Name, r.BytesPerFrame/1024, r.InletSyscallsPerFrame, r.OutletSyscallsPerFrame)
	return nil
}

// countSyscalls counts the system calls of process pid over d.
func countSyscalls(ctx context.Context, perf string, pid int, d time.Duration) (float64, error) {
	out, err := exec.CommandContext(ctx, perf, "stat", "-x", ",", "-e", "raw_syscalls:sys_enter",
		"-p", strconv.Itoa(pid), "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("perf stat: %v: %s", err, firstLine(string(out)))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ","); len(f) > 2 && strings.HasPrefix(f[2], "raw_syscalls:sys_enter") {
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("perf stat: no count in %q", firstLine(string(out)))
}
