package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The first byte of every portal message. A portal message is the payload of a routed
// message between an inlet session and an outlet session (or the outlet's listener worker,
// for connect), carried inside the end-to-end secure channel.
const (
	msgConnect   byte = 1 // inlet -> outlet worker: [receive window u32]
	msgConnected byte = 2 // outlet session -> inlet session: [receive window u32]
	msgRefused   byte = 3 // outlet -> inlet: [reason]
	msgData      byte = 4 // [bytes], at least one
	msgFin       byte = 5 // the sender's side reached end of stream: a half-close
	msgReset     byte = 6 // the path or a socket failed: [reason]; the session is over
	msgWindow    byte = 7 // [credit u32]: the receiver consumed bytes, the sender may send more
)

// maxReason bounds the reason of a refusal or reset.
const maxReason = 256

var errMalformed = errors.New("malformed portal message")

// message is a decoded portal message. Its body is part of the bytes it was decoded from.
type message struct {
	kind byte
	n    uint32 // connect, connected: the receive window; window: the credit
	body []byte // data: the bytes; refused, reset: the reason
}

// parse decodes a portal message without copying or allocating: a message has no length
// field, its body is the rest of p, and a reason is at most maxReason bytes.
func parse(p []byte) (message, error) {
	if len(p) == 0 {
		return message{}, fmt.Errorf("%w: empty", errMalformed)
	}
	m := message{kind: p[0]}
	ok := false
	switch m.kind {
	case msgConnect, msgConnected, msgWindow:
		if ok = len(p) == 5; ok {
			m.n = binary.BigEndian.Uint32(p[1:])
		}
	case msgRefused, msgReset:
		ok = len(p)-1 <= maxReason
		m.body = p[1:]
	case msgData:
		ok = len(p) > 1
		m.body = p[1:]
	case msgFin:
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
	case msgConnect, msgConnected, msgWindow:
		return binary.BigEndian.AppendUint32(b, m.n)
	case msgFin:
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
