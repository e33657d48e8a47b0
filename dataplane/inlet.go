package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/internal/backoff"
	"github.com/adjacentnet/adjacent/internal/ratelog"
	"github.com/adjacentnet/adjacent/internal/signals"
	"github.com/adjacentnet/adjacent/routing"
)

// Path gives an inlet the current way to its outlet. The control plane implements it: it
// keeps the secure channels up and waits for them while they are being re-established.
type Path interface {
	Open(ctx context.Context) (PathRoute, error)
}

// PathRoute is a live route to an outlet worker.
type PathRoute struct {
	To   routing.Route   // e.g. [sc.x, outlet]: through the end-to-end channel
	Flow routing.FlowID  // the channel's flow, on which the outlet's answers arrive
	Done <-chan struct{} // closed when the channel goes
	Peer routing.Peer    // the outlet node's identity
	// Link is what the path's messages travel over (the end-to-end channel), whose
	// Guarantees must cover pathNeeds; nil for a path inside the node.
	Link routing.Link
	// Alive checks that the far end still answers (nil: no check). Broken gives up the
	// route, closing Done, so that the next Open builds a new one.
	Alive  func(ctx context.Context) error
	Broken func()
}

// checkAfter is how long an inlet waits for the outlet's answer before it checks that the
// path is alive: a channel whose far end restarted without a word looks open until its
// keepalive notices, and a connect sent into it is never answered.
const checkAfter = time.Second

// InletConfig configures an Inlet. Zero values take the documented defaults.
type InletConfig struct {
	SessionConfig
	Path           Path
	ConnectTimeout time.Duration // for the path and the outlet's answer; default 10s
	// Allow decides whether the outlet's node (PathRoute.Peer) may still serve the inlet's
	// live sessions; Recheck resets the sessions it refuses. Nil: never re-checked.
	Allow Allow
}

// Inlet accepts local TCP connections and carries each through a portal session to the
// outlet at the end of its Path.
type Inlet struct {
	cfg    InletConfig
	stats  Counters
	groups groups
	policy rechecker
	// notOpened logs the clients whose session could not be opened, with the last reason
	notOpened *ratelog.Logger

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	path   PathRoute // the last one Path gave, for connections that need not wait
	// refusal is the last refusal of a connect or check, and when (Counters.Refused counts them)
	refusal   string
	refusedAt time.Time
}

// NewInlet returns an inlet; Serve runs it on a listener, Dial and Handle serve single
// connections (the transparent stack's).
func NewInlet(cfg InletConfig) *Inlet {
	cfg.SessionConfig = cfg.SessionConfig.withDefaults()
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	in := &Inlet{cfg: cfg}
	in.notOpened = ratelog.New(cfg.Logger, slog.LevelInfo, "portal connection not opened", refusalLogInterval)
	in.policy = newRechecker(cfg.Allow, "the inlet's policy", cfg.Logger)
	return in
}

// Recheck resets, at both ends, the live sessions whose outlet node Allow now refuses, and
// returns how many. A refused path is no longer used for new connections, which then wait
// for Path.Open (where the control plane refuses them with the reason).
func (in *Inlet) Recheck() int {
	if in.cfg.Allow == nil {
		return 0
	}
	in.mu.Lock()
	if pr := in.path; pr.Peer != nil {
		if ok, _ := in.cfg.Allow(pr.Peer); !ok {
			in.path = PathRoute{}
		}
	}
	in.mu.Unlock()
	return in.policy.run(&in.groups, &in.stats)
}

// Stats returns the inlet's counters.
func (in *Inlet) Stats() *Counters { return &in.stats }

// LastRefusal returns the reason of the last refusal (by the outlet, its node or the path) of
// a connection or check, and when it came; "" if there was none.
func (in *Inlet) LastRefusal() (string, time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.refusal, in.refusedAt
}

// noteRefusal counts err and keeps its reason if it is a refusal.
func (in *Inlet) noteRefusal(err error) {
	if !errors.Is(err, ErrRefused) {
		return
	}
	in.stats.Refused.Add(1)
	in.mu.Lock()
	in.refusal, in.refusedAt = err.Error(), time.Now()
	in.mu.Unlock()
}

// Check opens the path, as a connection would, and asks the outlet whether it would accept a
// connect from this node, without dialing its target. It returns nil, or why not: a refusal
// (by the outlet's policy or capacity, no such outlet at its node, or the path's own) wraps
// ErrRefused and is counted as a connection's would be.
func (in *Inlet) Check(ctx context.Context) error {
	pr, err := in.cfg.Path.Open(ctx)
	if err != nil {
		in.noteRefusal(err)
		return err
	}
	if err := checkPath(pr.Link); err != nil {
		return err
	}
	answers := make(chan error, 1)
	name := "portal." + randomID()
	w := routing.WorkerFunc(func(m *routing.Message) {
		a, err, ok := answerOf(m)
		m.Release()
		if ok && a.kind != msgConnected {
			select {
			case answers <- err:
			default:
			}
		}
	})
	if err := in.cfg.Router.Register(name, w, pr.Flow); err != nil {
		return err
	}
	defer in.cfg.Router.Unregister(name)
	m := routing.NewMessage()
	m.Onward = pr.To
	m.Return = routing.MustRoute(routing.LocalAddress(name))
	m.SetPayload([]byte{msgCheck})
	in.cfg.Router.Send(m)
	select {
	case err = <-answers:
	case <-pr.Done:
		err = errPathDown
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", errNoAnswer, ctx.Err())
	}
	if err != nil {
		in.noteRefusal(err)
		return err
	}
	in.mu.Lock()
	in.path = pr
	in.mu.Unlock()
	return nil
}

// Serve accepts connections on ln until Close.
func (in *Inlet) Serve(ln net.Listener) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	in.ln = ln
	in.mu.Unlock()
	failures := 0
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			failures++
			time.Sleep(backoff.Accept.Delay(failures))
			continue
		}
		failures = 0 // Go turns Nagle off on accepted connections by itself
		if !in.openNow(c) {
			go in.Handle(c)
		}
	}
}

// openNow opens a portal session for c without waiting, when the path is up: the outlet's
// answer, on the transport's goroutine, starts the session or resets c (opened), so a
// connect costs no goroutine until the session runs. It reports false, having done nothing,
// when the path is down and Handle must wait for it.
func (in *Inlet) openNow(c net.Conn) bool {
	in.mu.Lock()
	pr := in.path
	in.mu.Unlock()
	if pr.Done == nil || isClosed(pr.Done) {
		return false
	}
	_, err := in.open(pr, c, in.opened)
	return err == nil
}

// opened takes the outcome of openNow's connect step.
func (in *Inlet) opened(d *dial, err error) {
	if err != nil {
		in.notOpened.Note(slog.String("client", d.s.conn.RemoteAddr().String()), slog.String("err", err.Error()))
		return
	}
	d.s.start(d.peer, d.credit)
}

func isClosed(c <-chan struct{}) bool { return signals.Closed(c) }

// Handle carries one accepted connection through a new portal session; a connection whose
// session cannot be opened is closed.
func (in *Inlet) Handle(c net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.ConnectTimeout)
	defer cancel()
	p, err := in.Dial(ctx)
	if err != nil {
		in.notOpened.Note(slog.String("client", c.RemoteAddr().String()), slog.String("err", err.Error()))
		abort(c)
		return
	}
	p.Attach(c)
}

// Pending is a portal session whose outlet has connected to its target, waiting for the local
// connection.
type Pending struct{ d *dial }

// Dial opens a portal session: it waits for the path, asks the outlet to connect and waits
// for its answer. A refusal comes back as an error with the outlet's reason. A path found
// dead on the way is rebuilt, within ctx.
func (in *Inlet) Dial(ctx context.Context) (*Pending, error) {
	for {
		p, err := in.dialOnce(ctx)
		if !errors.Is(err, errPathDown) || ctx.Err() != nil {
			return p, err
		}
	}
}

func (in *Inlet) dialOnce(ctx context.Context) (*Pending, error) {
	pr, err := in.cfg.Path.Open(ctx)
	if err != nil {
		in.noteRefusal(err)
		return nil, err
	}
	if err := checkPath(pr.Link); err != nil {
		return nil, err // and the path is not kept for openNow
	}
	in.mu.Lock()
	in.path = pr
	in.mu.Unlock()
	outcome := make(chan error, 1)
	d, err := in.open(pr, nil, func(_ *dial, err error) { outcome <- err })
	if err != nil {
		return nil, err
	}
	select {
	case err = <-outcome:
	case <-ctx.Done():
		d.giveUp(fmt.Errorf("%w: %w", errNoAnswer, ctx.Err()))
		err = <-outcome // the answer's, if it came first
	}
	if err != nil {
		return nil, err
	}
	return &Pending{d: d}, nil
}

// check gives up a path whose far end does not answer; its sessions then end and Dial
// builds a new one.
func (in *Inlet) check(ctx context.Context, pr PathRoute) {
	ctx, cancel := context.WithTimeout(ctx, checkAfter)
	defer cancel()
	if err := pr.Alive(ctx); err != nil {
		in.cfg.Logger.Info("path to the outlet is dead; rebuilding it", "err", err)
		if pr.Broken != nil {
			pr.Broken()
		}
	}
}

// Attach joins the local connection c to the session and starts it.
func (p *Pending) Attach(c net.Conn) {
	s := p.d.s
	s.mu.Lock()
	gone := s.isDone() // the path went while we waited
	if !gone {
		s.attach(c) // before end takes the connection to close it
	}
	s.mu.Unlock()
	if gone {
		abort(c)
		return
	}
	s.start(p.d.peer, p.d.credit)
}

// Abort gives up a session no local connection will use.
func (p *Pending) Abort() { p.d.s.reset(errors.New("the client went away"), true) }

// Close stops accepting and resets every session.
func (in *Inlet) Close() error {
	in.mu.Lock()
	in.closed = true
	ln := in.ln
	in.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	in.groups.resetAll(errors.New("inlet deleted"))
	in.policy.log.Stop()
	in.notOpened.Stop()
	return nil
}
