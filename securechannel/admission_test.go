package securechannel

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/internal/lowport"
	"github.com/adjacentnet/adjacent/routing"
	"github.com/adjacentnet/adjacent/routing/tcp"
)

// countingHandler counts log records by message.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}

// junkFlood sends first handshake messages with fresh ephemeral keys (random bytes: to the
// responder any 32 bytes are a key) and never a message 3. With echo it answers cookie replies
// as an initiator would, so it is admitted as far as a proven sender is. Each message's return
// route is [name, index], so replies come back to name with the index of the message.
type junkFlood struct {
	name  string
	echo  bool
	fresh bool // each message from a new origin: name-1, name-2, ... (replies are lost)
	send  func(payload []byte, ret routing.Route)
	mu    sync.Mutex
	sent  [1024][]byte // ephemeral keys by index, a ring
	n     int
	msg2s atomic.Int64 // answered with message 2: Diffie–Hellman done for the flood
	cooks atomic.Int64 // answered with a cookie
}

func (f *junkFlood) ret(i, n int) routing.Route {
	name := f.name
	if f.fresh {
		name += "-" + strconv.Itoa(n)
	}
	return routing.MustRoute(routing.LocalAddress(name), routing.LocalAddress(strconv.Itoa(i)))
}

// first sends a first message with a new ephemeral key.
func (f *junkFlood) first() {
	e := make([]byte, xxMessage1Len)
	crand.Read(e)
	f.mu.Lock()
	i := f.n % len(f.sent)
	f.sent[i] = e
	f.n++
	n := f.n
	f.mu.Unlock()
	f.send(appendFirst(nil, e, nil), f.ret(i, n))
}

// HandleMessage takes a reply to the flood: onward [name, index].
func (f *junkFlood) HandleMessage(m *routing.Message) {
	defer m.Release()
	m.Onward.Pop()
	_, v, _ := m.Onward.Next()
	i, err := strconv.Atoi(string(v))
	if err != nil || i < 0 || i >= len(f.sent) {
		return
	}
	p := m.Payload()
	if len(p) > 0 && p[0] == typeHandshake {
		f.msg2s.Add(1)
		return
	}
	cookie, ok := parseCookieReply(p)
	if !ok {
		return
	}
	f.cooks.Add(1)
	if !f.echo {
		return
	}
	f.mu.Lock()
	e := f.sent[i]
	f.mu.Unlock()
	f.send(appendFirst(nil, e, cookie), f.ret(i, 0))
}

// floodOrigin is the harness's stand-in for a node's origin rule: a message whose return
// route's second hop is named flood-* comes from that origin, as a relayed one comes from
// the client's channel at the hub; anything else takes the default.
func floodOrigin(m *routing.Message) string {
	if m.Return.Len() < 2 {
		return ""
	}
	if a := m.Return.Addresses()[1]; strings.HasPrefix(a.Value, "flood") {
		return a.Value
	}
	return ""
}

// harnessFlood is a junkFlood from alice to bob's listener over the pair's wire.
func (p *echoPair) harnessFlood(t testing.TB, name string, echo bool) *junkFlood {
	t.Helper()
	f := &junkFlood{name: name, echo: echo}
	f.send = func(payload []byte, ret routing.Route) {
		m := routing.NewMessage()
		m.Onward = routing.MustRoute(routing.LocalAddress("to-bob"), routing.LocalAddress("api"))
		m.Return = ret
		m.SetPayload(payload)
		p.alice.r.Send(m)
	}
	if err := p.alice.r.Register(name, f, p.wire.flows["alice"]); err != nil {
		t.Fatal(err)
	}
	return f
}

// honestHandshakes opens and closes n channels from alice to bob, each of which must succeed
// within alice's handshake timeout.
func (p *echoPair) honestHandshakes(t testing.TB, n int, what string) {
	t.Helper()
	ac := p.alice.config("")
	ac.HandshakeTimeout = 3 * time.Second
	for i := range n {
		c, err := p.initiate(ac)
		if err != nil {
			t.Fatalf("honest handshake %d during %s: %v", i, what, err)
		}
		c.Close()
	}
}

// keepFlooding calls first every interval until the test ends.
func keepFlooding(t testing.TB, every time.Duration, floods ...*junkFlood) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				for _, f := range floods {
					f.first()
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestRelayedFloodDoesNotStarveHonest is hole 3 of issue 12: every relayed handshake reaches
// a relay owner over its one channel to the hub. One relay client floods first messages and
// answers every cookie; honest handshakes over the same link keep completing, because the
// client is an origin of its own (Config.Origin): it gets its token bucket's worth of
// Diffie–Hellman and its share of pending places, and after that cookies and refusals.
// Before, a cap of 16 pending handshakes per link let the flood hold them all.
func TestRelayedFloodDoesNotStarveHonest(t *testing.T) {
	bobCfg := func(c *Config) {
		c.Origin = floodOrigin
		c.OriginRate = 1e-9 // no refill during the test: the counts are exact
	}
	p := newEchoPair(t, nil, bobCfg)
	base := p.listener.Stats().Answered // the pair's own channel
	evil := p.harnessFlood(t, "flood-evil", true)
	for range 300 {
		evil.first()
	}
	keepFlooding(t, time.Millisecond, evil)
	burst := int64(p.listener.cfg.OriginBurst)
	eventually(t, "the relay client's bucket spent", func() bool { return evil.msg2s.Load() == burst })
	p.honestHandshakes(t, 5, "one relay client's flood")

	st := p.listener.Stats()
	if got := evil.msg2s.Load(); got != burst {
		t.Errorf("the flooding origin got message 2 %d times, want its burst %d", got, burst)
	}
	if got, want := st.Answered-base-uint64(burst), uint64(5); got != want {
		t.Errorf("honest handshakes answered = %d, want %d", got, want)
	}
	if max := p.listener.cfg.MaxPendingPerOrigin; st.Pending > max+1 {
		t.Errorf("pending handshakes = %d, want at most the flood's cap %d and one honest", st.Pending, max)
	}
	if st.Cookies == 0 || st.Refused == 0 {
		t.Errorf("stats %+v: want cookies for the unproven flood and refusals for the proven one past its bucket", st)
	}
}

// TestFreshFirstMessagesUnderLoad: a flood of first messages, each from a new origin with a
// new ephemeral key, none of which answers. Once MaxPending/8 handshakes are pending the
// listener is under load and does no more Diffie–Hellman for unproven senders: each costs it
// one HMAC for a cookie. Honest initiators answer the cookie and are admitted at once.
// (TestPendingHandshakesCapped shows that pending handshakes leave nothing behind when they
// time out.) Before, the flood took
// every pending place for the handshake timeout, and honest handshakes timed out.
func TestFreshFirstMessagesUnderLoad(t *testing.T) {
	p := newEchoPair(t, nil, func(c *Config) {
		c.Origin = floodOrigin
		c.HandshakeTimeout = time.Minute // none of the flood's ends during the test
	})
	base := p.listener.Stats().Answered
	var floods []*junkFlood
	for i := range 600 {
		f := p.harnessFlood(t, "flood-"+strconv.Itoa(i), false)
		f.first()
		floods = append(floods, f)
	}
	load := p.listener.loadMark()
	eventually(t, "every flood message answered", func() bool {
		var n int64
		for _, f := range floods {
			n += f.msg2s.Load() + f.cooks.Load()
		}
		return n == 600
	})
	p.honestHandshakes(t, 5, "a flood of fresh first messages")
	st := p.listener.Stats()
	if got, want := st.Answered-base, uint64(load+5); got != want {
		t.Errorf("first messages answered with Diffie–Hellman = %d, want %d (the flood up to the load mark, and the honest ones)", got, want)
	}
	if got, want := st.Cookies, uint64(600-load+5); got != want {
		t.Errorf("cookies = %d, want %d", got, want)
	}
}

// TestPendingHandshakesCapped: first messages from one origin that are never followed up
// take a pending place each up to the origin's cap, beyond which each takes the place of the
// origin's oldest; past half the origin's bucket they get cookies instead. Places are freed
// at the handshake timeout, and nothing stays.
func TestPendingHandshakesCapped(t *testing.T) {
	p := newEchoPair(t, nil, func(c *Config) {
		c.MaxPending, c.MaxPendingPerOrigin = 64, 4
		c.OriginRate = 1e-9
		c.HandshakeTimeout = 2 * time.Second // none ends before the counts are taken
	})
	base, workers := p.listener.Stats(), p.bob.r.Workers()
	for range 20 {
		hs, _ := newHandshakeState(true, p.alice.static, nil, prologue, nil)
		msg1, _, _, _ := hs.WriteMessage([]byte{typeHandshake}, nil)
		p.inject(routing.LocalAddress("api"), msg1)
	}
	// The pair's channel spent one token: 31 left, of which 15 above the proven half.
	eventually(t, "all answered", func() bool {
		st := p.listener.Stats()
		return st.Answered+st.Cookies-base.Answered-base.Cookies == 20
	})
	st := p.listener.Stats()
	if got, want := [3]uint64{st.Answered - base.Answered, st.Evicted, st.Cookies}, [3]uint64{15, 11, 5}; got != want {
		t.Errorf("answered, evicted, cookies = %v, want %v", got, want)
	}
	if st.Pending != 4 {
		t.Errorf("pending = %d, want the origin's cap 4", st.Pending)
	}
	eventually(t, "pending handshakes timed out", func() bool {
		return p.listener.Stats().Pending == 0 && p.bob.r.Workers() == workers
	})
	c, err := p.initiate(p.alice.config("")) // proven by a cookie, from the lower half
	if err != nil {
		t.Fatalf("honest handshake after the flood: %v", err)
	}
	c.Close()
}

// floodConn is a raw TCP connection that speaks just enough of the transport to send first
// handshake messages (a junkFlood) and take the replies.
type floodConn struct {
	*junkFlood
	nc     net.Conn
	wmu    sync.Mutex
	closed chan struct{} // the server closed the connection
}

func dialFlood(t *testing.T, from, addr string, echo bool) *floodConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	f := &floodConn{junkFlood: &junkFlood{name: "flood", echo: echo}, nc: nc, closed: make(chan struct{})}
	f.send = f.write
	nc.Write([]byte{'a', 'd', 'j', tcp.ProtocolVersion})
	go f.read()
	return f
}

func (f *floodConn) write(payload []byte, ret routing.Route) {
	m := routing.NewMessage()
	defer m.Release()
	m.Onward = routing.MustRoute(routing.LocalAddress("api"))
	m.Return = ret
	m.SetPayload(payload)
	body := m.AppendTo(nil)
	f.wmu.Lock()
	f.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	f.wmu.Unlock()
}

func (f *floodConn) read() {
	defer close(f.closed)
	var hdr [4]byte
	if _, err := io.ReadFull(f.nc, hdr[:]); err != nil { // the server's preamble
		return
	}
	for {
		if _, err := io.ReadFull(f.nc, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			continue
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(f.nc, frame); err != nil {
			return
		}
		m := routing.NewMessage()
		if err := m.Decode(frame); err != nil {
			m.Release()
			continue
		}
		f.HandleMessage(m)
	}
}

// TestManySourcesFloodOverTCP is hole 4 of issue 12: ten sources (127.0.0.1 to .10), two
// connections each, flood first messages and answer every cookie, more than enough to hold
// every pending place. A client from an eleventh source completes its handshakes meanwhile:
// it proves itself with a cookie and takes the place of a flooder's oldest. Before, caps of
// 256 pending and 32 per source let eight sources hold every place. Refusals are logged as
// one line per interval.
func TestManySourcesFloodOverTCP(t *testing.T) {
	logs := &countingHandler{n: make(map[string]int)}
	log := slog.New(logs)
	alice, bob := newTestNode(t, "alice"), newTestNode(t, "bob")
	tb := tcp.New(bob.r, tcp.Config{Logger: log})
	defer tb.Close()
	addr := lowport.Listen(t, tb.Listen).Addr().String()
	bc := bob.config("")
	bc.Logger = log
	bc.OriginRate = 1e-9
	ln, err := Listen(bob.r, "api", bc, routing.FlowTransports)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var floods []*floodConn
	for src := 1; src <= 10; src++ {
		for range 2 {
			floods = append(floods, dialFlood(t, "127.0.0."+strconv.Itoa(src), addr, true))
		}
	}
	for range 32 {
		for _, f := range floods {
			f.first()
		}
	}
	// Each source: 16 unproven answered, 16 more proven with cookies; ten sources want 320
	// places of 256. Every first message is answered with message 2 or a cookie, or
	// refused past its origin's bucket, and every cookie comes back once: so the first
	// messages without a cookie are those answered or refused.
	sent := uint64(len(floods) * 32)
	eventually(t, "every first message handled", func() bool {
		st := ln.Stats()
		return st.Answered+st.Refused == sent
	})
	st := ln.Stats()
	if want := uint64(10 * ln.cfg.OriginBurst); st.Answered != want {
		t.Errorf("flood answered with Diffie–Hellman %d times, want the ten buckets' %d", st.Answered, want)
	}
	if st.Pending != ln.cfg.MaxPending || st.Evicted == 0 {
		t.Fatalf("stats %+v: want every place taken and some given up", st)
	}

	ta := tcp.New(alice.r, tcp.Config{Logger: quiet, LocalAddr: netip.MustParseAddr("127.0.0.20")})
	defer ta.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ta.Connect(ctx, addr)
	if err != nil {
		t.Fatalf("honest connect during the flood: %v", err)
	}
	ac := alice.config("")
	ac.HandshakeTimeout = 3 * time.Second
	for i := range 3 {
		ch, err := Initiate(ctx, alice.r, routing.Through(conn).Worker("api"), ac)
		if err != nil {
			t.Fatalf("honest handshake %d from an eleventh source during the flood: %v", i, err)
		}
		ch.Close()
	}
	if n := logs.count("refused first handshake messages"); n < 1 || n > 2 {
		t.Errorf("refusals logged %d times, want one line per interval (1 or 2)", n)
	}
}

// TestListenerBucketBoundsDiffieHellman: first messages from many fresh origins, each within
// its own bucket and the listener not under load, get message 2 (Diffie–Hellman) only up to
// the listener's bucket, cookies beyond it; honest initiators, who answer the cookie, still
// get through. Before, each origin's bucket was the only bound: 16 a second times up to 1024
// origins.
func TestListenerBucketBoundsDiffieHellman(t *testing.T) {
	const burst, floods = 8, 40
	p := newEchoPair(t, nil, func(c *Config) {
		c.Origin = floodOrigin
		c.MaxPending = 1024 // not under load: the load mark is 128
		c.ListenerRate, c.ListenerBurst = 1e-9, burst
		c.HandshakeTimeout = time.Minute
	})
	base := p.listener.Stats().Answered // the pair's own channel
	var fs []*junkFlood
	for i := range floods {
		f := p.harnessFlood(t, "flood-"+strconv.Itoa(i), false)
		f.first()
		fs = append(fs, f)
	}
	var msg2s, cookies int64
	eventually(t, "every flood message answered", func() bool {
		msg2s, cookies = 0, 0
		for _, f := range fs {
			msg2s, cookies = msg2s+f.msg2s.Load(), cookies+f.cooks.Load()
		}
		return msg2s+cookies == floods
	})
	if want := int64(burst) - int64(base); msg2s != want {
		t.Errorf("fresh origins got message 2 %d times, want %d (the listener's bucket)", msg2s, want)
	}
	p.honestHandshakes(t, 3, "the listener's bucket empty")
	if st := p.listener.Stats(); st.Answered != burst+3 {
		t.Errorf("answered with message 2: %d, want the bucket %d and the 3 proven honest ones", st.Answered, burst)
	}
}
