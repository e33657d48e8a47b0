package dataplane

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

func TestConnectStep(t *testing.T) {
	for _, tc := range []struct {
		from  connectState
		event connectEvent
		to    connectState
		act   connectAction
	}{
		{connectWaiting, answerConnected, connectOpen, succeed},
		{connectWaiting, answerRefused, connectRefused, fail},
		{connectWaiting, giveUp, connectAbandoned, fail},
		{connectAbandoned, answerConnected, connectAbandoned, resetLate},
		{connectAbandoned, answerRefused, connectAbandoned, ignore},
		{connectAbandoned, giveUp, connectAbandoned, ignore},
		{connectOpen, answerConnected, connectOpen, ignore}, // answered twice
		{connectOpen, answerRefused, connectOpen, ignore},
		{connectOpen, giveUp, connectOpen, ignore},
		{connectRefused, answerConnected, connectRefused, ignore},
		{connectRefused, giveUp, connectRefused, ignore},
	} {
		if to, act := step(tc.from, tc.event); to != tc.to || act != tc.act {
			t.Errorf("step(%d, %d) = %d, %d; want %d, %d", tc.from, tc.event, to, act, tc.to, tc.act)
		}
	}
}

// fakeOutlet answers an inlet's connects as a test says, from the session worker "far".
type fakeOutlet struct {
	r        *routing.Router
	connects chan routing.Route // the inlet sessions' routes
	far      inbox              // what the inlet sends the outlet's session
}

type inbox chan []byte

func (in inbox) HandleMessage(m *routing.Message) {
	in <- bytes.Clone(m.Payload())
	m.Release()
}

func newFakeOutlet(t *testing.T, cfg InletConfig) (*fakeOutlet, *Inlet) {
	t.Helper()
	r := routing.New(routing.Config{Logger: quiet})
	o := &fakeOutlet{r: r, connects: make(chan routing.Route, 4), far: make(inbox, 64)}
	r.Register("outlet", routing.WorkerFunc(func(m *routing.Message) {
		o.connects <- m.Return
		m.Release()
	}))
	r.Register("far", o.far)
	cfg.Router, cfg.Logger = r, quiet
	cfg.Path = &staticPath{to: routing.MustRoute(routing.LocalAddress("outlet")), done: make(chan struct{})}
	in := NewInlet(cfg)
	t.Cleanup(func() { in.Close() })
	return o, in
}

// answer sends p to the inlet session at to, from the far session.
func (o *fakeOutlet) answer(to routing.Route, p []byte) {
	m := routing.NewMessage()
	m.Onward = to
	m.Return = routing.MustRoute(routing.LocalAddress("far"))
	m.SetPayload(p)
	o.r.Send(m)
}

func (o *fakeOutlet) connect(t *testing.T) routing.Route {
	t.Helper()
	select {
	case to := <-o.connects:
		return to
	case <-time.After(5 * time.Second):
		t.Fatal("no connect reached the outlet")
		return routing.Route{}
	}
}

func (o *fakeOutlet) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-o.far:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the outlet's session")
		return nil
	}
}

// TestConnect drives an inlet's connect step through its outcomes with a fake outlet: the
// answer connected, a refusal with its reason, an answer that does not parse, a timeout, and
// a connected that comes after the inlet gave up, which resets the outlet's session.
func TestConnect(t *testing.T) {
	type dialed struct {
		p   *Pending
		err error
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		answer  []byte // nil: none
		wantErr string // "": connected
		late    bool   // then a late connected
	}{
		{"connected", 0, withU32(msgConnected, 1000), "", false},
		{"refused with reason", 0, withReason(msgRefused, "the target is down"), "refused by the outlet: the target is down", false},
		{"malformed answer", 0, []byte{msgConnected, 0}, "malformed portal message from the outlet", false},
		{"timeout", 50 * time.Millisecond, nil, "no answer from the outlet", false},
		{"late answer after giving up", 50 * time.Millisecond, nil, "no answer from the outlet", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, in := newFakeOutlet(t, InletConfig{ConnectTimeout: tc.timeout})
			done := make(chan dialed, 1)
			go func() {
				p, err := in.Dial(context.Background())
				done <- dialed{p, err}
			}()
			to := o.connect(t)
			if tc.answer != nil {
				o.answer(to, tc.answer)
			}
			var d dialed
			select {
			case d = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Dial did not return")
			}
			if tc.wantErr == "" {
				if d.err != nil {
					t.Fatalf("Dial = %v, want a session", d.err)
				}
				if d.p.d.credit != 1000 || d.p.d.peer.NextAddress() != routing.LocalAddress("far") {
					t.Fatalf("connected to %v with credit %d, want far with 1000", d.p.d.peer.NextAddress(), d.p.d.credit)
				}
				d.p.Abort()
				if p := o.next(t); p[0] != msgReset {
					t.Fatalf("Abort sent %v to the outlet's session, want a reset", p)
				}
				return
			}
			if d.err == nil || !strings.Contains(d.err.Error(), tc.wantErr) {
				t.Fatalf("Dial = %v, want %q", d.err, tc.wantErr)
			}
			if tc.late {
				o.answer(to, withU32(msgConnected, 1000))
				p := o.next(t)
				if m, err := parse(p); err != nil || m.kind != msgReset || !strings.Contains(string(m.body), "stopped waiting") {
					t.Fatalf("a late connected got %q, want a reset", p)
				}
			}
			select {
			case p := <-o.far:
				t.Fatalf("the outlet's session got %q, want nothing", p)
			default:
			}
		})
	}
}

// tryConn is a connection of the transparent stack's kind: not a kernel socket, with a
// non-blocking TryWrite; it counts what each writer took. Write is what a writer goroutine
// uses, waiting.
type tryConn struct {
	net.Conn // a pipe end: Read waits until Close
	full     bool

	mu             sync.Mutex
	tried, written bytes.Buffer
}

func (c *tryConn) TryWrite(bufs [][]byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return 0, nil
	}
	n := 0
	for _, b := range bufs {
		c.tried.Write(b)
		n += len(b)
	}
	return n, nil
}

func (c *tryConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written.Write(p)
}

// TestDeliveryWritesInPlace: data for a client of the transparent stack goes out through its
// TryWrite on the goroutine that delivers it, without a writer goroutine; only a connection
// whose buffer is full gets one.
func TestDeliveryWritesInPlace(t *testing.T) {
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "room", true: "full"}[full]
		t.Run(name, func(t *testing.T) {
			o, in := newFakeOutlet(t, InletConfig{})
			done := make(chan *Pending, 1)
			go func() {
				p, err := in.Dial(context.Background())
				if err != nil {
					t.Error(err)
				}
				done <- p
			}()
			to := o.connect(t)
			o.answer(to, withU32(msgConnected, DefaultWindow))
			p := <-done
			if p == nil {
				return
			}
			a, b := net.Pipe()
			defer b.Close()
			c := &tryConn{Conn: a, full: full}
			p.Attach(c)
			defer c.Close()
			var want bytes.Buffer
			for i := range 100 {
				data := bytes.Repeat([]byte{byte(i)}, 1000)
				want.Write(data)
				o.answer(to, append([]byte{msgData}, data...))
			}
			if !full {
				// Delivered synchronously: everything is in by now, through TryWrite.
				c.mu.Lock()
				defer c.mu.Unlock()
				if !bytes.Equal(c.tried.Bytes(), want.Bytes()) || c.written.Len() != 0 {
					t.Fatalf("TryWrite took %d bytes and a writer goroutine %d; want all %d by TryWrite", c.tried.Len(), c.written.Len(), want.Len())
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				c.mu.Lock()
				ok := bytes.Equal(c.written.Bytes(), want.Bytes())
				got := c.written.Len()
				c.mu.Unlock()
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the writer goroutine wrote %d of %d bytes to a full connection", got, want.Len())
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
