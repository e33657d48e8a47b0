package securechannel

import (
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// The admission of first handshake messages at a listener.
//
// Every first message has an origin (Config.Origin). An origin has a token bucket for the
// Diffie–Hellman its messages cost and a share of the pending handshakes; the listener has a
// bucket of its own for all of them (ListenerRate):
//
//   - A first message without a cookie is answered with a cookie, not message 2, when the
//     listener is under load (MaxPending/8 pending), when its origin's bucket is below half,
//     or when the listener's bucket is empty.
//   - A first message with a valid cookie is answered with message 2 while its origin has a
//     token at all; a cookie that is not valid is dropped.
//   - An answered handshake takes a pending place. When its origin holds
//     MaxPendingPerOrigin, or the listener MaxPending, the oldest pending handshake of its
//     origin, or of the origin holding the most, gives up its place (unproven ones first):
//     internal/fairshare's rule.
//
// So a flooding origin competes with itself, an origin that has not been asking always gets
// a place, and under load blind flooders cost one HMAC each. The table of origins is capped
// too, at 4*MaxPending: when it is full, entries without pending handshakes whose bucket is
// full again are swept from it, and a new origin finds no room until then.

// loadDivisor sets the load above which unproven senders get cookies: MaxPending/loadDivisor.
const loadDivisor = 8

// origin is the token bucket of one origin; its pending handshakes are in the listener's
// table (Listener.pending).
type origin struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// pendingHS is a handshake holding a pending place. Its fields are guarded by the listener's
// mutex.
type pendingHS struct {
	c        *Channel
	origin   string
	proven   bool // its first message carried a valid cookie
	answered bool // message 2 was sent; the channel is in the listener's set
	gone     bool // its place was given back
}

// decision is admit's answer: a pending place (p), a cookie to send, or why the message is
// dropped; and a pending handshake that gave up its place for it.
type decision struct {
	p             *pendingHS
	cookie        [cookieLen]byte
	why           string
	evict         *Channel
	evictAnswered bool
}

// originOf names the origin of a first message (Config.Origin). The kinds are prefixed so
// that no name of one kind can pass for another.
func (l *Listener) originOf(m *routing.Message) string {
	if l.cfg.Origin != nil {
		if o := l.cfg.Origin(m); o != "" {
			return "o:" + o
		}
	}
	if sl, ok := m.Local.Link.(sourced); ok {
		if src := sl.Source(); src.IsValid() {
			return "s:" + src.String()
		}
	}
	return "l:" + m.Return.NextAddress().String()
}

// loadMark is the number of pending handshakes from which the listener is under load.
func (l *Listener) loadMark() int { return max(1, l.cfg.MaxPending/loadDivisor) }

// maxOrigins caps the table of origins.
func (l *Listener) maxOrigins() int { return 4 * l.cfg.MaxPending }

// admit decides what a first message (its Noise message msg1 and its cookie, nil if none) from
// origin key gets.
func (l *Listener) admit(key string, msg1, cookie []byte, link routing.Link) (d decision) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		d.why = "listener closed"
		return d
	}
	proven := cookie != nil
	if proven && !l.cookies.check(now, key, msg1, cookie) {
		d.why = "invalid cookie"
		return d
	}
	burst := float64(l.cfg.OriginBurst)
	tokens := burst
	o := l.origins[key]
	if o != nil {
		tokens = min(burst, o.tokens+now.Sub(o.at).Seconds()*l.cfg.OriginRate)
		o.tokens, o.at = tokens, now
	}
	need := 1.0
	if !proven {
		need = float64(l.cfg.OriginBurst/2) + 1 // the lower half is for proven senders
	}
	all := float64(l.cfg.ListenerBurst)
	if !l.tokensAt.IsZero() {
		all = min(all, l.tokens+max(0, now.Sub(l.tokensAt).Seconds())*l.cfg.ListenerRate)
	}
	l.tokens, l.tokensAt = all, now
	switch {
	case !proven && (l.pending.Len() >= l.loadMark() || tokens < need || all < 1):
		d.cookie = l.cookies.make(now, key, msg1)
		return d
	case tokens < need:
		d.why = "handshake rate of one origin"
		return d
	}
	if o == nil {
		if len(l.origins) >= l.maxOrigins() {
			l.sweep(now)
		}
		if len(l.origins) >= l.maxOrigins() {
			d.why = "too many origins"
			return d
		}
		o = &origin{tokens: tokens, at: now}
		l.origins[key] = o
	}
	o.tokens--
	l.tokens = max(0, l.tokens-1)
	if v := l.victim(key); v != nil {
		d.evict, d.evictAnswered = v.c, v.answered
		l.unpend(v)
	}
	c := newChannel(l.router, l.cfg, false, link, l.flow)
	c.strangers = l.strangers
	c.origin = key
	d.p = &pendingHS{c: c, origin: key, proven: proven}
	l.pending.Add(key, d.p)
	return d
}

// victim picks the pending handshake that gives up its place for a new one of origin key,
// if one must (fairshare.Table.Giver): within the giving origin, the oldest unproven one
// goes first, then the oldest.
func (l *Listener) victim(key string) *pendingHS {
	from, ok := l.pending.Giver(key)
	if !ok {
		return nil
	}
	held := l.pending.Held(from)
	for _, p := range held {
		if !p.proven {
			return p
		}
	}
	return held[0]
}

// unpend gives back p's place; it does nothing the second time. l.mu is held.
func (l *Listener) unpend(p *pendingHS) {
	if p.gone {
		return
	}
	p.gone = true
	l.pending.Remove(p.origin, p)
}

// sweep removes the origins without pending handshakes whose bucket is full again: they are
// as good as new. It runs at most once a second, when the table is full. l.mu is held.
func (l *Listener) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second && now.Sub(l.swept) >= 0 {
		return
	}
	l.swept = now
	full := float64(l.cfg.OriginBurst)
	for k, o := range l.origins {
		if len(l.pending.Held(k)) == 0 && o.tokens+now.Sub(o.at).Seconds()*l.cfg.OriginRate >= full {
			delete(l.origins, k)
		}
	}
}
