package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/hub"
	"github.com/adjacentnet/adjacent/control/identity"
	"github.com/adjacentnet/adjacent/control/rpc"
	"github.com/adjacentnet/adjacent/internal/backoff"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/securechannel"
)

// Workers of a hub, behind its listener, that members call.
const (
	AuthorityWorker = "authority"
	RelaysWorker    = "relays"
)

// Channel is what the session needs of a secure channel to the hub
// (*securechannel.Channel).
type Channel interface {
	Address() routing.Address // the local worker that sends over it
	Flow() routing.FlowID     // the flow of what comes out of it
	Done() <-chan struct{}    // closed when the channel closes
	Err() error               // why it closed
}

// Config configures a Session.
type Config[C Channel] struct {
	Project string
	Hub     string // the hub's route text, for logs
	Router  *routing.Router
	// Connect opens a channel to the hub that verifies the authority's identity.
	Connect func(ctx context.Context) (C, error)
	// Open runs each time a channel to the hub comes up, before the session offers it (the
	// node opens its workers to the hub's flow).
	Open func(ch C)
	// Up runs next, once the session offers the channel, before the relays are registered
	// again (the node asks for the revocations in force).
	Up func(ctx context.Context, ch C)
	// Relays returns the names of the relays the member holds, registered again on every
	// new channel. Nil: none.
	Relays func(ctx context.Context) ([]string, error)
	// Alive reports whether the session should keep going (its project is still the
	// node's). Nil: until the context of Run ends.
	Alive func() bool
	// Backoff is the wait after failures attempts to reach the hub failed in a row, on top
	// of the transport's own spacing of dials. Default: jittered exponential, up to 1.6s.
	Backoff     func(failures int) time.Duration
	CallTimeout time.Duration // waiting for the hub and its answer; default 10s
	Logger      *slog.Logger  // default slog.Default()
}

// Session is a member's session with its hub: one channel kept up by Run, and the calls
// the member makes over it.
type Session[C Channel] struct {
	cfg Config[C]

	mu      sync.Mutex
	ch      C
	up      bool
	changed chan struct{} // closed and replaced whenever ch changes
	lastErr error         // why the last attempt to reach the hub failed
}

// NewSession returns a session of cfg; Run brings it up.
func NewSession[C Channel](cfg Config[C]) *Session[C] {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Backoff == nil {
		cfg.Backoff = Backoff
	}
	if cfg.Alive == nil {
		cfg.Alive = func() bool { return true }
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	return &Session[C]{cfg: cfg, changed: make(chan struct{})}
}

// hubBackoff spaces attempts to reach the hub: 100ms doubled per failure up to 1.6s.
var hubBackoff = backoff.Exponential{Min: 100 * time.Millisecond, Max: 1600 * time.Millisecond}

// Backoff is the default wait after failures attempts in a row (none yet counts as one): a
// random duration in the second half of hubBackoff's step.
func Backoff(failures int) time.Duration { return hubBackoff.Delay(max(failures, 0) + 1) }

// ErrHubDown: the hub is not reachable now.
var ErrHubDown = errors.New("the hub is not reachable")

// connectTimeout bounds one attempt to reach the hub.
const connectTimeout = 15 * time.Second

// Run keeps the channel to the hub up until ctx ends or the session is no longer alive: it
// reconnects after the backoff, and on each new channel runs Open and Up and registers the
// relays again.
func (s *Session[C]) Run(ctx context.Context) {
	var failures int
	for ctx.Err() == nil && s.cfg.Alive() {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		ch, err := s.cfg.Connect(cctx)
		cancel()
		if err != nil {
			s.set(ch, false, err)
			failures++
			if failures == 1 || failures%10 == 0 {
				msg := "hub unreachable; retrying"
				if errors.Is(err, securechannel.ErrRefused) {
					msg = "the hub refused this node; retrying"
				}
				s.cfg.Logger.Warn(msg, "hub", s.cfg.Hub, "err", err, "attempts", failures)
			}
			t := time.NewTimer(s.cfg.Backoff(failures))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		failures = 0
		if s.cfg.Open != nil {
			s.cfg.Open(ch)
		}
		s.set(ch, true, nil)
		s.cfg.Logger.Info("connected to the hub", "project", s.cfg.Project, "hub", s.cfg.Hub)
		if s.cfg.Up != nil {
			s.cfg.Up(ctx, ch)
		}
		s.ReregisterRelays(ctx)
		select {
		case <-ch.Done():
			s.cfg.Logger.Warn("lost the hub", "project", s.cfg.Project, "reason", ch.Err())
		case <-ctx.Done():
		}
		var none C
		s.set(none, false, nil)
	}
}

// set records the channel to the hub, or none and why the last attempt to reach it
// failed, and wakes those waiting for it.
func (s *Session[C]) set(ch C, up bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !up {
		var none C
		ch = none
	}
	s.ch, s.up, s.lastErr = ch, up, err
	close(s.changed)
	s.changed = make(chan struct{})
}

// Channel returns the channel to the hub, and false while it is down.
func (s *Session[C]) Channel() (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch, s.up
}

// Wait returns the channel to the hub, waiting for it while it is down. A hub that
// refused this node (no longer a member, say) is not down: Wait returns at once.
func (s *Session[C]) Wait(ctx context.Context) (C, error) {
	for {
		s.mu.Lock()
		ch, up, changed, lastErr := s.ch, s.up, s.changed, s.lastErr
		s.mu.Unlock()
		if up {
			return ch, nil
		}
		var none C
		if errors.Is(lastErr, securechannel.ErrRefused) {
			return none, fmt.Errorf("the hub refused this node: %w", lastErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if lastErr != nil {
				return none, fmt.Errorf("%w: %w", ErrHubDown, lastErr)
			}
			return none, fmt.Errorf("%w: %w", ErrHubDown, ctx.Err())
		}
	}
}

// Call sends req to a worker of the hub and decodes the answer into resp, waiting for the
// channel while it is down, within the call timeout.
func (s *Session[C]) Call(ctx context.Context, worker string, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ch, err := s.Wait(ctx)
	if err != nil {
		return err
	}
	return rpc.Call(ctx, s.cfg.Router, routing.Destination{Route: routing.MustRoute(ch.Address(), routing.LocalAddress(worker)), Flow: ch.Flow()}, req, resp)
}

// ErrNotConnected: the call needs the channel to the hub up now.
var ErrNotConnected = errors.New("the hub is not connected")

// callNow is Call on the channel that is up now, without waiting for one.
func (s *Session[C]) callNow(ctx context.Context, worker string, req, resp any) error {
	ch, up := s.Channel()
	if !up {
		return ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	return rpc.Call(ctx, s.cfg.Router, routing.Destination{Route: routing.MustRoute(ch.Address(), routing.LocalAddress(worker)), Flow: ch.Flow()}, req, resp)
}

// Credential asks the hub's authority for a fresh credential over the channel that is up
// now, and returns it unchecked: the node checks it is its own.
func (s *Session[C]) Credential(ctx context.Context) ([]byte, error) {
	var ans hub.CredentialAnswer
	if err := s.callNow(ctx, AuthorityWorker, hub.Credential{}, &ans); err != nil {
		return nil, err
	}
	return ans.Credential, nil
}

// MaxRevocationPages bounds the pages of revocations a member asks its hub for after it
// (re)connected: MaxRevocationPages × hub.MaxRevocationsAnswer revocations at most.
const MaxRevocationPages = 256

// Revocations asks the hub for the revocations in force, signed events the node verifies:
// page after page (hub.Revocations), until the hub says there are no more, the pages stop
// advancing, or MaxRevocationPages were read.
func (s *Session[C]) Revocations(ctx context.Context) ([][]byte, error) {
	var all [][]byte
	var after identity.Identifier
	for range MaxRevocationPages {
		var ans hub.RevocationsAnswer
		if err := s.callNow(ctx, AuthorityWorker, hub.Revocations{After: after}, &ans); err != nil {
			if len(all) > 0 {
				return all, fmt.Errorf("revocations after %s: %w", after, err)
			}
			return nil, err
		}
		all = append(all, ans.Events...)
		next := identity.Identifier(ans.Next)
		if next == "" || next <= after {
			return all, nil
		}
		after = next
	}
	return all, nil
}

// CreateRelay registers relay name at the hub, pointed at this member's channel.
func (s *Session[C]) CreateRelay(ctx context.Context, name string) (api.Relay, error) {
	var r api.Relay
	err := s.Call(ctx, RelaysWorker, hub.RelayCreate{Name: name}, &r)
	return r, err
}

// ReregisterRelays registers again the relays the member holds: on a fresh channel to the
// hub, and once a lapsed credential was renewed (the hub refused them meanwhile).
func (s *Session[C]) ReregisterRelays(ctx context.Context) {
	if s.cfg.Relays == nil {
		return
	}
	names, err := s.cfg.Relays(ctx)
	if err != nil {
		s.cfg.Logger.Warn("relays: read state", "err", err)
		return
	}
	for _, name := range names {
		if _, err := s.CreateRelay(ctx, name); err != nil {
			s.cfg.Logger.Warn("relay not re-registered", "name", name, "err", err)
		}
	}
}
