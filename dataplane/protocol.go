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
	msgData      byte = 4 // [bytes]
	msgFin       byte = 5 // the sender's side reached end of stream: a half-close
	msgReset     byte = 6 // the path or a socket failed: [reason]; the session is over
	msgWindow    byte = 7 // [credit u32]: the receiver consumed bytes, the sender may send more
)

// maxReason bounds the reason of a refusal or reset.
const maxReason = 256

var errMalformed = errors.New("malformed portal message")

// u32 reads the 4-byte big-endian value of a connect, connected or window message.
func u32(p []byte) (uint32, error) {
	if len(p) != 5 {
		return 0, fmt.Errorf("%w: type %d with %d bytes", errMalformed, p[0], len(p))
	}
	return binary.BigEndian.Uint32(p[1:]), nil
}

func withU32(kind byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{kind}, v)
}

func withReason(kind byte, reason string) []byte {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return append([]byte{kind}, reason...)
}
