package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/adjacentnet/adjacent/routing"
)

// The first byte of every portal message. A portal message is the payload of a routed
// message between an inlet session and an outlet session (or the outlet's listener worker,
// for connect), carried inside the end-to-end secure channel.
const (
	msgConnect   byte = 1 // inlet -> outlet worker: [receive window u32][early data, at most maxEarly]
	msgConnected byte = 2 // outlet session -> inlet session: [receive window u32]
	msgRefused   byte = 3 // outlet -> inlet: [reason]
	msgData      byte = 4 // [bytes], at least one
	msgFin       byte = 5 // the sender's side reached end of stream: a half-close
	msgReset     byte = 6 // the path or a socket failed: [reason]; the session is over
	msgWindow    byte = 7 // [credit u32]: the receiver consumed bytes, the sender may send more
	// msgCheck asks the outlet worker whether a connect from this sender would be accepted,
	// without dialing: it answers msgChecked, or msgRefused with the reason a connect would get.
	msgCheck   byte = 8 // inlet -> outlet worker
	msgChecked byte = 9 // outlet -> inlet
)

// FirstPacketKind and the kinds after it belong to packet-mode portals (dataplane/packet/portal):
// an outlet hands such a message to its OutletConfig.Packets.
const FirstPacketKind byte = 16

// pathNeeds is what the portal protocol needs of the path under a session: every message,
// once and in order (routing.Stream). Data carries no offset and credit no sequence number:
// a lost window update stalls the session for good, a lost or reordered data message
// corrupts the stream, a lost half-close leaves it open. A session therefore refuses to run
// over a path whose link does not promise a stream, at both ends: the inlet before it
// connects, the outlet before it dials (the packet portals, which carry the client's own
// TCP segments, are the ones to run over datagrams). And it needs room for a data message
// of a whole chunk with its routes.
var pathNeeds = routing.Guarantees{Reliable: true, Ordered: true, MaxMessage: maxPortalMessage}

// maxPortalMessage is the largest routed message a session sends: version, two routes, the
// kind byte and a chunk of data.
const maxPortalMessage = 1 + 2*(1+routing.MaxRouteBytes) + 1 + chunk

// checkPath returns why a portal session must not run over link, or nil. A nil link is a
// path inside the node.
func checkPath(link routing.Link) error {
	if link == nil {
		return nil
	}
	if g := link.Guarantees(); !g.Covers(pathNeeds) {
		return fmt.Errorf("%w: it is %s; a TCP portal needs reliable, ordered delivery of messages up to %d bytes (use a stream transport such as tcp)", errPathUnfit, g, maxPortalMessage)
	}
	return nil
}

var errPathUnfit = errors.New("the path cannot carry a TCP portal")

// maxEarly bounds the early data of a connect: what the client sent before its inlet's
// session connected (a PostgreSQL startup message, a TLS ClientHello), which rides with the
// connect so that the first round trip costs no extra one through the portal. The outlet
// writes it to the target first, charged to the window it grants.
const maxEarly = 16 << 10

// maxReason bounds the reason of a refusal or reset.
const maxReason = 256

var errMalformed = errors.New("malformed portal message")

// message is a decoded portal message. Its body is part of the bytes it was decoded from.
type message struct {
	kind byte
	n    uint32 // connect, connected: the receive window; window: the credit
	body []byte // data, connect: the bytes; refused, reset: the reason
}

// parse decodes a portal message without copying or allocating: a message has no length
// field, its body is the rest of p, a reason is at most maxReason bytes and early data at
// most maxEarly.
func parse(p []byte) (message, error) {
	if len(p) == 0 {
		return message{}, fmt.Errorf("%w: empty", errMalformed)
	}
	m := message{kind: p[0]}
	ok := false
	switch m.kind {
	case msgConnected, msgWindow:
		if ok = len(p) == 5; ok {
			m.n = binary.BigEndian.Uint32(p[1:])
		}
	case msgConnect:
		if ok = len(p) >= 5 && len(p)-5 <= maxEarly; ok {
			m.n = binary.BigEndian.Uint32(p[1:])
			m.body = p[5:]
		}
	case msgRefused, msgReset:
		ok = len(p)-1 <= maxReason
		m.body = p[1:]
	case msgData:
		ok = len(p) > 1
		m.body = p[1:]
	case msgFin, msgCheck, msgChecked:
		ok = len(p) == 1
	}
	if !ok {
		return message{}, fmt.Errorf("%w: type %d with %d bytes", errMalformed, p[0], len(p))
	}
	return m, nil
}

// appendTo appends the encoding of m to b.
func (m message) appendTo(b []byte) []byte {
	b = append(b, m.kind)
	switch m.kind {
	case msgConnected, msgWindow:
		return binary.BigEndian.AppendUint32(b, m.n)
	case msgConnect:
		return append(binary.BigEndian.AppendUint32(b, m.n), m.body...)
	case msgFin, msgCheck, msgChecked:
		return b
	}
	return append(b, m.body...)
}

func withU32(kind byte, v uint32) []byte {
	return message{kind: kind, n: v}.appendTo(nil)
}

func withReason(kind byte, reason string) []byte {
	return message{kind: kind, body: []byte(reason[:min(len(reason), maxReason)])}.appendTo(nil)
}
