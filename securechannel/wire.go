package securechannel

// The first byte of every message addressed to a listener or a channel's decryptor.
const (
	// typeHandshake: [type][Noise handshake message] — the first handshake, in the clear
	// (Noise encrypts the static keys and payloads of messages 2 and 3 itself).
	typeHandshake byte = 1
	// typeTransport: [type][generation][counter 8][ciphertext][tag 16].
	typeTransport byte = 2
	// typeRefused: [type][reason] — the responder's unauthenticated hint that it rejected
	// the initiator's message 3, so the initiator fails fast with a reason instead of
	// timing out. An attacker able to inject it could equally drop traffic.
	typeRefused byte = 3
	// typeCookie: [type][cookie 16] — a listener under load answers a first message with it
	// instead of message 2 (cookie.go); the initiator sends its first message again, with it.
	typeCookie byte = 4
	// typeHandshakeCookie: [type][Noise message 1][cookie 16] — a first message sent again
	// with the cookie the listener gave for it.
	typeHandshakeCookie byte = 5
)

// The first plaintext byte of a transport message.
const (
	kindData               byte = 1 // an inner routing message
	kindClose              byte = 2 // the peer closed the channel
	kindPing               byte = 3 // keepalive; the responder's first one says it accepted
	kindRefresh            byte = 4 // opaque authentication data (refreshed credentials)
	kindRehandshake        byte = 5 // a Noise handshake message of the next generation
	kindRehandshakeRequest byte = 6 // the responder asks the initiator to re-handshake
	kindPingRequest        byte = 7 // a ping that asks for a pong: is the peer there?
	kindPong               byte = 8 // the answer to kindPingRequest
)

// transportHeaderLen is what a transport message adds in front of its plaintext kind:
// type, generation and counter.
const transportHeaderLen = 2 + headerLen

// transportOverhead is the full size a transport message adds to an inner message.
const transportOverhead = transportHeaderLen + 1 + tagLen

// xxMessage1Len is the size of a Noise XX first message with an empty payload: one ephemeral
// public key. Anything else addressed to a listener is dropped unread.
const xxMessage1Len = 32

// maxRefusalLen bounds the reason of a refusal.
const maxRefusalLen = 200

// prologue binds handshakes to this protocol and version.
var prologue = []byte("adjacent secure channel v1")
