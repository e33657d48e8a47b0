package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/internal/pgtest"
)

// Issue 16, processes killed: while 100 transfers of random sizes run through the hub's
// relay, a process is killed (or a service stopped) and started again. Every transfer must
// either complete byte-exact or end in a reset or an error at the ends that did not die —
// never a clean end of stream short of its bytes, never a hang — and once the process is
// back, a new connection must work within 10 s.
//
// The nodes are real processes (the adjacent binary, as users run it) on loopback: a hub,
// an outlet node ("bank") and an inlet node ("analysis"). The clients and the target
// server are this test's own Go code, so each end checks what it got against a pattern.

const (
	transfers   = 100
	maxTransfer = 4 << 20 // bytes each way, at most
	// recoverWithin is issue 16's bound on how soon after a restart new connections work.
	recoverWithin = 10 * time.Second
	// hangAfter is when a transfer that has neither ended nor failed counts as hung.
	hangAfter = 45 * time.Second
)

// TestKillHubDuringTransfers: the hub dies with kill -9; both ends of every transfer it
// carried see a reset or an error, and the portal serves again once the hub is back.
func TestKillHubDuringTransfers(t *testing.T) {
	f := newFaults(t, false)
	f.run(ends{client: true, server: true}, func() time.Time {
		f.kill(f.hub)
		return f.restart(f.hub)
	})
}

// TestKillOutletNodeDuringTransfers: the outlet's node dies. Its target connections close
// as the kernel closes a dead process's sockets, which the target cannot tell from a clean
// close; the clients, whose ends are alive, must see a reset.
func TestKillOutletNodeDuringTransfers(t *testing.T) {
	f := newFaults(t, false)
	f.run(ends{client: true}, func() time.Time {
		f.kill(f.bank)
		return f.restart(f.bank)
	})
}

// TestKillInletNodeDuringTransfers: the inlet's node dies. The clients' connections were
// to it, and close as the kernel closes a dead process's sockets; the target, whose end is
// alive, must see a reset.
func TestKillInletNodeDuringTransfers(t *testing.T) {
	f := newFaults(t, false)
	f.run(ends{server: true}, func() time.Time {
		f.kill(f.analysis)
		return f.restart(f.analysis)
	})
}

// TestHubStoreRestartDuringTransfers: the hub's PostgreSQL member store is stopped for
// 3 s and started again during the run, with credentials of 10 s, so that members'
// refreshes meet the outage. The store is not on the data path: transfers complete or fail
// cleanly, and new connections work once it is back.
func TestHubStoreRestartDuringTransfers(t *testing.T) {
	f := newFaults(t, true)
	f.run(ends{client: true, server: true}, func() time.Time {
		if err := f.store.Stop(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if err := f.store.Start(); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	})
}

// TestTargetRestartDuringTransfers: the outlet's target stops (its connections reset, as
// when a server dies, and its port refuses) and starts again. The clients see resets,
// never a short clean end, and new connections work once the target listens again.
func TestTargetRestartDuringTransfers(t *testing.T) {
	f := newFaults(t, false)
	f.run(ends{client: true}, func() time.Time {
		f.target.stop()
		if err := f.transfer(f.rand.Uint64(), 1<<10, 1<<10, ends{client: true}); err == nil {
			t.Error("a new connection completed while the target was down")
		}
		f.target.start()
		return time.Now()
	})
}

// ends says at which ends of a transfer a short clean end of stream is a failure: those
// whose peer process stays alive.
type ends struct{ client, server bool }

// faults is the topology of the kill tests.
type faults struct {
	t                   *testing.T
	bin                 string
	hub, bank, analysis string // homes
	inlet               string // the analysis node's inlet, where clients connect
	target              *target
	store               *pgtest.Server // the hub's member store, if it has one
	rand                *rand.Rand
}

func newFaults(t *testing.T, store bool) *faults {
	if testing.Short() {
		t.Skip("-short: runs three nodes and 100 transfers")
	}
	bin, err := tools()
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte(t.Name()))
	f := &faults{t: t, bin: bin, rand: rand.New(rand.NewChaCha8(seed))}
	f.hub, f.bank, f.analysis = f.home(), f.home(), f.home()
	f.target = newTarget(t)
	create := []string{"project", "create", "acme", "--listen", freePort(t)}
	if store {
		f.store = pgtest.StartServer(t, pgtest.Options{})
		create = append(create, "--store", f.store.DSN(), "--credential-lifetime", lifetime.String())
	}
	f.adj(f.hub, create...)
	bankTicket := f.adj(f.hub, "project", "ticket", "--relay", "postgres")
	analysisTicket := f.adj(f.hub, "project", "ticket", "--attribute", "role=analyst")
	f.adj(f.bank, "enroll", bankTicket)
	_, port, _ := net.SplitHostPort(f.target.addr)
	f.adj(f.bank, "tcp-outlet", "create", "--to", port, "--from", "target")
	f.adj(f.bank, "relay", "create", "postgres")
	f.adj(f.analysis, "enroll", analysisTicket)
	f.inlet = freePort(t)
	_, port, _ = net.SplitHostPort(f.inlet)
	f.adj(f.analysis, "tcp-inlet", "create", "--from", port, "--via", "postgres", "--to", "target")
	f.serving("the nodes started", time.Now(), 30*time.Second)
	return f
}

func (f *faults) home() string {
	h := filepath.Join(f.t.TempDir(), "home")
	f.t.Cleanup(func() { exec.Command(filepath.Join(f.bin, "adjacent"), "--home", h, "node", "stop").Run() })
	return h
}

// adj runs the adjacent CLI on home and returns its output; it fails the test on error.
func (f *faults) adj(home string, args ...string) string {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(f.bin, "adjacent"), append([]string{"--home", home}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("adjacent %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String())
}

// kill kills home's node with SIGKILL and waits until it is gone.
func (f *faults) kill(home string) {
	f.t.Helper()
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(home, "node.pid"))))
	if pid == 0 {
		f.t.Fatalf("no pid in %s", home)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		f.t.Fatalf("kill %d: %v", pid, err)
	}
	if alive(pid) {
		f.t.Fatalf("node %d still alive 5s after SIGKILL", pid)
	}
}

// restart starts home's node again and returns when its start command returned.
func (f *faults) restart(home string) time.Time {
	f.adj(home, "node", "create")
	return time.Now()
}

// run starts the transfers, applies fault once some have completed and many still run,
// checks how every transfer ended, and that new connections work within recoverWithin of
// the time fault returns (when the process is back).
func (f *faults) run(checked ends, fault func() (back time.Time)) {
	t := f.t
	row := newRow(t, t.Name(), fmt.Sprintf("%d paced transfers of up to %s each way", transfers, sizeText(maxTransfer)), faultScenarios[t.Name()])
	f.target.mu.Lock()
	f.target.check = checked.server
	f.target.mu.Unlock()
	var completed, failed atomic.Int32
	var mu sync.Mutex
	var bad []string
	results := make(chan struct{}, transfers)
	for i := range transfers {
		seed, up, down := f.rand.Uint64(), f.rand.Int64N(maxTransfer), f.rand.Int64N(maxTransfer)
		switch f.rand.IntN(4) { // one way only, at times: an end with nothing left to read
		case 0:
			up = 0
		case 1:
			down = 0
		}
		go func() {
			defer func() { results <- struct{}{} }()
			err := f.transfer(seed, up, down, checked)
			switch {
			case err == nil:
				completed.Add(1)
			case errors.Is(err, errBroken):
				mu.Lock()
				bad = append(bad, fmt.Sprintf("transfer %d (%d up, %d down): %v", i, up, down, err))
				mu.Unlock()
			default:
				failed.Add(1)
			}
		}()
	}
	// The fault comes once a tenth have completed: the small ones, with most still running.
	for deadline := time.Now().Add(hangAfter); completed.Load() < transfers/10; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d transfers completed in %v before the fault\n%s", completed.Load(), transfers, hangAfter, f.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := completed.Load()
	back := fault()
	// New connections, while the transfers the fault hit end.
	f.serving("the restart", back, recoverWithin)
	for range transfers {
		<-results // each transfer ends by itself: its deadline makes a hang an error
	}
	f.target.mu.Lock()
	bad = append(bad, f.target.bad...)
	f.target.mu.Unlock()
	t.Logf("%d transfers completed before the fault, %d in all, %d ended in a reset or an error", before, completed.Load(), failed.Load())
	row.Load += fmt.Sprintf(": %d completed, %d reset", completed.Load(), failed.Load())
	if len(bad) > 0 {
		row.BytesLost = -1 // a broken stream lost bytes or delivered wrong ones
		t.Errorf("%d transfers broke their stream:\n%s\n%s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n"), f.logs())
	}
}

// serving waits until a new transfer completes, and fails the test unless one did within
// bound of since, when what happened.
func (f *faults) serving(what string, since time.Time, bound time.Duration) {
	f.t.Helper()
	for {
		err := f.transfer(f.rand.Uint64(), 64<<10, 64<<10, ends{client: true, server: true})
		took := time.Since(since)
		if err == nil {
			f.t.Logf("a new connection completed %v after %s", took.Round(time.Millisecond), what)
			if took > bound {
				f.t.Errorf("new connections work %v after %s, want within %v", took.Round(time.Millisecond), what, bound)
			}
			return
		}
		if took > bound+20*time.Second {
			f.t.Fatalf("new connections still fail %v after %s: %v\n%s", took.Round(time.Millisecond), what, err, f.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs are the last lines of each node's log.
func (f *faults) logs() string {
	var b strings.Builder
	for _, n := range []struct{ name, home string }{{"hub", f.hub}, {"bank", f.bank}, {"analysis", f.analysis}} {
		b.WriteString(n.name + " log:\n" + tail(readFile(filepath.Join(n.home, "node.log")), 15) + "\n")
	}
	return b.String()
}

// errBroken marks what must never happen to a transfer: a clean end of stream short of its
// bytes, bytes that are not the ones sent or more than were sent, no end at all.
var errBroken = errors.New("stream broken")

// A transfer opens with a header: a seed and the byte counts of each direction. The client
// sends up bytes of the seed's pattern and then its end of stream; the target answers with
// down bytes of the pattern of the seed's complement and its end of stream.
const headerSize = 24

// transfer runs one transfer through the inlet. It returns nil when both directions arrived
// byte-exact with a clean end, an error wrapping errBroken on a broken stream at a checked
// end, and any other error (a reset, a refusal) as it is.
func (f *faults) transfer(seed uint64, up, down int64, checked ends) error {
	c, err := net.DialTimeout("tcp", f.inlet, 10*time.Second)
	if err != nil {
		return err
	}
	return exchangeOn(c, seed, up, down, checked)
}

// exchangeOn runs a transfer over c, a connection to the inlet, and closes it.
func exchangeOn(c net.Conn, seed uint64, up, down int64, checked ends) error {
	defer c.Close()
	tc := c.(*net.TCPConn)
	tc.SetDeadline(time.Now().Add(hangAfter))
	var hdr [headerSize]byte
	binary.BigEndian.PutUint64(hdr[0:], seed)
	binary.BigEndian.PutUint64(hdr[8:], uint64(up))
	binary.BigEndian.PutUint64(hdr[16:], uint64(down))
	sent := make(chan error, 1)
	go func() {
		if _, err := tc.Write(hdr[:]); err != nil {
			sent <- err
			return
		}
		if err := sendPattern(tc, seed, up); err != nil {
			sent <- err
			return
		}
		sent <- tc.CloseWrite()
	}()
	rerr := receivePattern(tc, ^seed, down)
	if rerr != nil && !errors.Is(rerr, errShort) {
		tc.SetLinger(0) // do not leave the target a clean end for a transfer that failed here
		c.Close()
	}
	serr := <-sent
	if err := outcome(rerr, serr, checked.client); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// outcome judges one end of a transfer from what its reader (rerr) and its writer (serr)
// saw: a short clean end of stream breaks the stream where checked.
func outcome(rerr, serr error, checked bool) error {
	switch {
	case errors.Is(rerr, errShort) && checked:
		return fmt.Errorf("%w: %v", errBroken, rerr)
	case rerr != nil:
		return rerr
	case serr != nil:
		return fmt.Errorf("send: %w", serr)
	}
	return nil
}

// sendPattern writes n bytes of seed's pattern, at most 2 MB/s: a transfer lasts seconds,
// so that a fault meets its bytes on the way through the nodes, not already delivered into
// their buffers.
func sendPattern(w io.Writer, seed uint64, n int64) error {
	p := pattern(seed)
	buf := make([]byte, 32<<10)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		p.Read(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
		time.Sleep(16 * time.Millisecond)
	}
	return nil
}

// errShort is a clean end of stream before all the bytes: see outcome.
var errShort = errors.New("a clean end of stream")

// receivePattern reads n bytes of seed's pattern and then the end of stream. A clean end
// before n bytes is errShort; wrong or extra bytes, and a hang (the connection's deadline),
// are errBroken.
func receivePattern(r net.Conn, seed uint64, n int64) error {
	p := pattern(seed)
	buf, want := make([]byte, 32<<10), make([]byte, 32<<10)
	got := int64(0)
	for got < n {
		k, err := r.Read(buf[:min(int64(len(buf)), n-got)])
		p.Read(want[:k])
		if !bytes.Equal(buf[:k], want[:k]) {
			return fmt.Errorf("%w: wrong bytes at %d of %d", errBroken, got, n)
		}
		got += int64(k)
		if err != nil {
			return endError(r, err, got, n)
		}
	}
	k, err := r.Read(buf[:1])
	if k != 0 {
		return fmt.Errorf("%w: more than the %d bytes sent", errBroken, n)
	}
	if err == io.EOF {
		return nil
	}
	return endError(r, err, got, n)
}

func endError(conn net.Conn, err error, got, n int64) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: no end after %v, at %d of %d bytes", errBroken, hangAfter, got, n)
	case err == io.EOF && got < n && !wasReset(conn):
		return fmt.Errorf("%w after %d of %d bytes", errShort, got, n)
	case err == io.EOF && got < n:
		// A reset is reported to the first call on the socket after it: the writing
		// goroutine took it, and this read finds the socket closed.
		return fmt.Errorf("reset after %d of %d bytes (the writing side took the error)", got, n)
	}
	return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
}

// wasReset reports whether c's socket was closed by a reset: a clean end of stream leaves
// it in CLOSE_WAIT (or a later state of an orderly close), a reset in CLOSE.
func wasReset(c net.Conn) bool {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return false
	}
	var info *unix.TCPInfo
	raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	return err == nil && info.State == unix.BPF_TCP_CLOSE
}

// pattern is the byte stream of seed.
func pattern(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// target is the outlet's TCP server: it checks what each client sends and answers with
// the pattern the header asks for. stop resets its connections and closes its port, as a
// server that dies; start listens again on the same port.
type target struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[*net.TCPConn]bool
	check bool     // whether a short clean end at the target breaks a transfer
	bad   []string // broken streams the target saw
}

func newTarget(t *testing.T) *target {
	tg := &target{t: t, addr: freePort(t), conns: map[*net.TCPConn]bool{}, check: true}
	tg.start()
	t.Cleanup(tg.stop)
	return tg
}

func (tg *target) start() {
	ln, err := net.Listen("tcp", tg.addr)
	if err != nil {
		tg.t.Fatalf("target: %v", err)
	}
	tg.mu.Lock()
	tg.ln = ln
	tg.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tg.serve(c.(*net.TCPConn))
		}
	}()
}

func (tg *target) stop() {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.ln != nil {
		tg.ln.Close()
		tg.ln = nil
	}
	for c := range tg.conns {
		c.SetLinger(0)
		c.Close()
	}
}

func (tg *target) serve(c *net.TCPConn) {
	tg.mu.Lock()
	if tg.ln == nil {
		tg.mu.Unlock()
		c.SetLinger(0)
		c.Close()
		return
	}
	tg.conns[c] = true
	check := tg.check
	tg.mu.Unlock()
	defer func() {
		tg.mu.Lock()
		delete(tg.conns, c)
		tg.mu.Unlock()
		c.Close()
	}()
	c.SetDeadline(time.Now().Add(hangAfter))
	var hdr [headerSize]byte
	if k, err := io.ReadFull(c, hdr[:]); err != nil {
		if (err == io.EOF || err == io.ErrUnexpectedEOF) && check {
			tg.broken(fmt.Sprintf("target: a clean end of stream after %d header bytes", k))
		}
		return
	}
	seed := binary.BigEndian.Uint64(hdr[0:])
	up, down := int64(binary.BigEndian.Uint64(hdr[8:])), int64(binary.BigEndian.Uint64(hdr[16:]))
	received := make(chan error, 1)
	go func() { received <- receivePattern(c, seed, up) }()
	serr := sendPattern(c, ^seed, down)
	if serr == nil {
		serr = c.CloseWrite()
	}
	if err := outcome(<-received, serr, check); errors.Is(err, errBroken) {
		tg.broken(fmt.Sprintf("target (%d up, %d down): %v", up, down, err))
	}
}

func (tg *target) broken(s string) {
	tg.mu.Lock()
	tg.bad = append(tg.bad, s)
	tg.mu.Unlock()
}
