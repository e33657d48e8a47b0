package securechannel

import (
	"crypto/rand"
	"io"
	"log/slog"
	"time"

	"github.com/flynn/noise"

	"github.com/adjacentnet/adjacent/routing"
)

// Authenticator supplies this side's handshake payload and authenticates the peer's. The
// control plane implements it with identities and credentials; to this package payloads are
// opaque bytes.
type Authenticator interface {
	// Payload returns the payload this side sends in its handshake message.
	Payload() ([]byte, error)
	// Authenticate checks the peer's payload against remoteStatic, the Noise static key the
	// peer proved it holds, and returns the authenticated peer. An error refuses the channel;
	// its text is given to the initiator as the reason.
	Authenticate(payload, remoteStatic []byte) (routing.Peer, error)
}

// Refresher is implemented by Authenticators that accept fresh authentication data (renewed
// credentials) over an established channel.
type Refresher interface {
	// Refresh applies data the peer sent over the channel to peer; an error closes the
	// channel.
	Refresh(peer routing.Peer, data []byte) error
}

// Admitter decides, at a listener, whether an authenticated peer may hold one more channel,
// and whether it holds it as a member or as a stranger. The control plane implements it
// with its tables per identity; to this package a peer is only a routing.Peer.
//
// A member's channel spawns into the listener's Flow and tells its link that its peer is
// authenticated, which lifts the caps the link keeps for unauthenticated peers. A
// stranger's channel (a peer the Admitter does not vouch for, such as a node come to enroll)
// spawns into the listener's StrangerFlow, leaves its link's caps in place, and is closed
// after StrangerTimeout unless fresh authentication data over it (Refresher) makes its peer
// a member.
type Admitter interface {
	// Admit is asked at the responder once the initiator is authenticated, before the
	// channel is established, and again (Admission.Again) when a stranger's peer presents
	// refreshed authentication data. An error refuses: the channel is not established and
	// the error's text is the reason given to the initiator. Otherwise release is called
	// once, when the channel closes or a later admission replaces this one.
	Admit(a Admission) (member bool, release func(), err error)
}

// Admission is what a listener tells its Admitter about a channel to admit.
type Admission struct {
	Peer routing.Peer
	// Origin names where the channel's first handshake message came from, as the listener's
	// handshake admission names it (Config.Origin, else the source address, else the
	// link), for caps per origin.
	Origin string
	// Close closes the channel: an Admitter that makes room for a new channel by ending an
	// older one calls the older one's Close (outside its own locks: it calls release).
	Close func()
	// Again is set when a stranger's peer presented refreshed authentication data over an
	// established channel: only a member's admission changes anything then, so an Admitter
	// need not make room for a stranger's.
	Again bool
}

// Config configures channels and listeners. Zero durations take the documented defaults.
type Config struct {
	Static noise.DHKey      // this node's Noise static key pair
	Auth   Authenticator    // required
	Logger *slog.Logger     // default slog.Default()
	Rand   io.Reader        // default crypto/rand
	Now    func() time.Time // default time.Now

	// HandshakeTimeout bounds a handshake from the first message to the last. Default 10s.
	HandshakeTimeout time.Duration
	// KeepaliveInterval is how long a channel may send nothing before it sends a ping.
	// Default 5s.
	KeepaliveInterval time.Duration
	// DeadAfter is how long without any message from the peer closes the channel.
	// Default 20s.
	DeadAfter time.Duration
	// RehandshakeAfter is the age after which the initiator replaces the channel's keys
	// with a fresh handshake (new ephemeral keys, so a later key compromise does not expose
	// earlier traffic). Default 1h.
	RehandshakeAfter time.Duration
	// MaxPending caps a listener's handshakes in progress. Default 256. When they are all
	// taken, a new handshake takes the place of the oldest pending one of the origin holding
	// the most, so that flooders compete with themselves and a new origin always gets a
	// place. From MaxPending/8 pending the listener is under load: it answers unproven first
	// messages with a cookie instead of doing any Diffie–Hellman (cookie.go).
	MaxPending int
	// MaxPendingPerOrigin caps the handshakes in progress of one origin; its next one takes
	// the place of its oldest. Default 32.
	MaxPendingPerOrigin int
	// OriginRate and OriginBurst are the token bucket of each origin: first messages
	// answered with message 2, that is with Diffie–Hellman, per second and at once.
	// Unproven senders (without a cookie) may use only the upper half of the bucket and get
	// a cookie below it, so a sender that proves its origin still gets through a flood of
	// unproven first messages from the same origin. Defaults 16 and 32.
	//
	// The trade-off is NAT: honest nodes behind one public address share its bucket. Each
	// needs one answer per channel, so 16 a second is plenty for them, and a flood from
	// that address costs the listener no more.
	OriginRate  float64
	OriginBurst int
	// ListenerRate and ListenerBurst are the token bucket of the whole listener for first
	// messages answered with message 2: beyond it, only senders that proved their origin
	// with a cookie are answered so (and they still take its tokens), the others get a
	// cookie. It bounds the Diffie–Hellman that many origins together cost, which their
	// buckets alone do not (OriginRate times up to 4*MaxPending origins). Defaults 512 and
	// 512.
	ListenerRate  float64
	ListenerBurst int
	// Origin, for a listener, names who a first handshake message comes from: messages of
	// one origin share one token bucket and compete for one fair share of the pending
	// handshakes, and a cookie is good only for its origin. It returns "" for the default:
	// the source address of links that know theirs (TCP connections: the IPv4 address or
	// the IPv6 /64), else the first hop of the return route, which the link pushed (the
	// connection, or the channel the message came out of). A node sets it where one link
	// carries many senders, as its channel to a hub carries everyone's relayed handshakes;
	// the name must be made of parts of the message that the sender cannot choose.
	Origin func(m *routing.Message) string
	// Accepted, for a listener, is called with each channel it has established.
	Accepted func(*Channel)
	// Admitter, for a listener, caps channels per peer and tells members from strangers.
	// Nil: every authenticated peer is a member, and nothing is capped per peer.
	Admitter Admitter
	// StrangerTimeout is how long a stranger's channel lives if its peer does not become a
	// member (see Admitter). Default 30s, the TCP transport's PreAuthTimeout,
	// which closes the connection under it as early if no member's channel runs over it.
	StrangerTimeout time.Duration

	rekey rekeyConfig // tests move the counters close to their limits
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.KeepaliveInterval, 5*time.Second)
	def(&c.DeadAfter, 20*time.Second)
	def(&c.RehandshakeAfter, time.Hour)
	def(&c.StrangerTimeout, 30*time.Second)
	if c.MaxPending <= 0 {
		c.MaxPending = 256
	}
	if c.MaxPendingPerOrigin <= 0 {
		c.MaxPendingPerOrigin = 32
	}
	if c.OriginRate <= 0 {
		c.OriginRate = 16
	}
	if c.OriginBurst <= 0 {
		c.OriginBurst = 32
	}
	if c.ListenerRate <= 0 {
		c.ListenerRate = 512
	}
	if c.ListenerBurst <= 0 {
		c.ListenerBurst = 512
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
