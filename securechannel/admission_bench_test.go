package securechannel

import (
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/routing"
)

// BenchmarkHandshakeUnderFlood measures honest handshakes over the harness's wire while the
// listener is flooded with first messages that never complete, at a fixed rate: by one relay
// client that answers cookies (relay), by ten origins that answer cookies (sources), or each
// from a new origin without answering (fresh). Each honest handshake comes from an origin of
// its own (peerOrigin). Reported: the share of honest handshakes that
// succeed within 2s (success), their mean latency (ms/handshake, flood=none is the baseline
// of the same run), and the listener's Diffie–Hellman for the flood (flood-dh/s) against the
// first messages the flood sent (flood-msgs/s, cookies answered not counted). Each origin's
// bucket starts full, so runs of a few seconds show the steady state:
//
//	go test -run '^$' -bench HandshakeUnderFlood -benchtime 5s ./securechannel/
func BenchmarkHandshakeUnderFlood(b *testing.B) {
	const tick = time.Millisecond // each flood sends one message per tick
	for _, tc := range []struct {
		name   string
		floods func(p *echoPair) []*junkFlood
	}{
		{"none", func(*echoPair) []*junkFlood { return nil }},
		{"relay", func(p *echoPair) []*junkFlood { return []*junkFlood{p.harnessFlood(b, "flood-evil", true)} }},
		{"sources", func(p *echoPair) []*junkFlood {
			var fs []*junkFlood
			for i := range 10 {
				fs = append(fs, p.harnessFlood(b, "flood-"+strconv.Itoa(i), true))
			}
			return fs
		}},
		{"fresh", func(p *echoPair) []*junkFlood {
			f := p.harnessFlood(b, "flood-fresh", false)
			f.fresh = true
			return []*junkFlood{f}
		}},
	} {
		b.Run("flood="+tc.name, func(b *testing.B) {
			p := newEchoPair(b, nil, func(c *Config) { c.Origin = peerOrigin })
			floods := tc.floods(p)
			before := p.listener.Stats().Answered
			start := time.Now()
			keepFlooding(b, tick, floods...)
			ac := p.alice.config("")
			ac.HandshakeTimeout = 2 * time.Second
			var n, ok int
			var took time.Duration
			for b.Loop() {
				t0 := time.Now()
				c, err := p.initiate(ac)
				n++
				if err == nil {
					ok++
					took += time.Since(t0)
					c.Close()
				}
			}
			elapsed := time.Since(start).Seconds()
			b.ReportMetric(float64(ok)/float64(n), "success")
			if ok > 0 {
				b.ReportMetric(took.Seconds()*1000/float64(ok), "ms/handshake")
			}
			flooded := float64(p.listener.Stats().Answered-before) - float64(ok)
			b.ReportMetric(max(0, flooded)/elapsed, "flood-dh/s")
			var sent int
			for _, f := range floods {
				f.mu.Lock()
				sent += f.n
				f.mu.Unlock()
			}
			b.ReportMetric(float64(sent)/elapsed, "flood-msgs/s")
		})
	}
}

// peerOrigin is floodOrigin, except that each honest handshake is an origin of its own (its
// initiator's address on the return route), as if each came from another peer: one origin
// opening handshakes back to back would meet its own rate.
func peerOrigin(m *routing.Message) string {
	if o := floodOrigin(m); o != "" || m.Return.Len() < 2 {
		return o
	}
	return m.Return.Addresses()[1].Value
}

// BenchmarkJunkFirstMessage is the listener's CPU for one junk first message (a fresh
// ephemeral key that will never be followed up), handled on one goroutine: answered with
// message 2 (cookie=no: the Diffie–Hellman, a pending channel), as every one was before
// cookies, or with a cookie when the listener is under load (cookie=yes: one HMAC).
//
//	go test -run '^$' -bench JunkFirstMessage ./securechannel/
func BenchmarkJunkFirstMessage(b *testing.B) {
	for _, underLoad := range []bool{false, true} {
		name := "cookie=no"
		if underLoad {
			name = "cookie=yes"
		}
		b.Run(name, func(b *testing.B) {
			bob := newTestNode(b, "bob")
			cfg := bob.config("")
			cfg.HandshakeTimeout = 100 * time.Millisecond
			if underLoad {
				cfg.HandshakeTimeout = time.Hour // the pending handshake that makes the load stays
			}
			cfg.OriginRate, cfg.OriginBurst = 1e12, 1<<30
			cfg.MaxPending, cfg.MaxPendingPerOrigin = 1<<20, 1<<20
			if underLoad {
				cfg.MaxPending = loadDivisor // under load from the first pending handshake
			}
			flow := bob.r.NewFlow()
			l, err := Listen(bob.r, "api", cfg, flow)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if err := bob.r.Register("sink", routing.WorkerFunc(func(m *routing.Message) { m.Release() }), flow); err != nil {
				b.Fatal(err)
			}
			link := &testLink{done: make(chan struct{})}
			junk := func() *routing.Message {
				e := make([]byte, xxMessage1Len)
				rand.Read(e)
				m := routing.NewMessage()
				m.Onward = routing.MustRoute(routing.LocalAddress("api"))
				m.Return = routing.MustRoute(routing.LocalAddress("sink"))
				m.Local = routing.Local{Flow: flow, Spawner: routing.FlowTransports, Link: link}
				m.SetPayload(appendFirst(nil, e, nil))
				return m
			}
			if underLoad {
				l.HandleMessage(junk()) // one pending handshake: the load mark of 1
			}
			b.ReportAllocs()
			for b.Loop() {
				l.HandleMessage(junk())
			}
			st := l.Stats()
			b.ReportMetric(float64(st.Cookies)/float64(st.Cookies+st.Answered), "cookie-share")
		})
	}
}
