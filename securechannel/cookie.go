package securechannel

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"time"
)

// A listener under load answers a first handshake message with a cookie instead of message 2,
// as WireGuard's responder does with its cookie reply: a MAC, under a secret the listener
// rotates, over the message's origin and the initiator's ephemeral key. It costs one HMAC and
// keeps no state. The initiator sends its first message again with the cookie appended; a
// valid cookie proves that the sender receives what is sent to that origin, and buys it a
// place ahead of unproven senders (see Listener). The format is this package's own.

// cookieLen is the size of a cookie: a truncated HMAC-SHA256.
const cookieLen = 16

// cookieRotation is how long a cookie secret is used to make cookies. The previous secret is
// still accepted, so a cookie is good for one to two rotations, far longer than a handshake.
const cookieRotation = 2 * time.Minute

// maxCookieTries bounds the cookie replies one handshake of an initiator answers, so that
// forged replies cannot keep it sending.
const maxCookieTries = 2

// cookieJar makes and checks cookies. It is not safe for concurrent use.
type cookieJar struct {
	rand      io.Reader
	cur, prev hash.Hash // HMAC-SHA256 under the current and the previous secret; prev may be nil
	since     time.Time // when cur was made
	sum       [sha256.Size]byte
}

func newCookieJar(rand io.Reader, now time.Time) (*cookieJar, error) {
	j := &cookieJar{rand: rand}
	if err := j.rotate(now); err != nil {
		return nil, err
	}
	return j, nil
}

// rotate makes a new current secret, keeping the current one as the previous.
func (j *cookieJar) rotate(now time.Time) error {
	var secret [32]byte
	if _, err := io.ReadFull(j.rand, secret[:]); err != nil {
		return fmt.Errorf("securechannel: cookie secret: %w", err)
	}
	j.prev, j.cur, j.since = j.cur, hmac.New(sha256.New, secret[:]), now
	return nil
}

// refresh rotates the secret when it is due. After two rotations' time without use, the
// previous secret is dropped too.
func (j *cookieJar) refresh(now time.Time) {
	age := now.Sub(j.since)
	if age < cookieRotation && age >= 0 {
		return
	}
	if err := j.rotate(now); err != nil {
		return // keep the old secret: still secret, only older
	}
	if age >= 2*cookieRotation {
		j.prev = nil
	}
}

// mac computes the cookie of (origin, ephemeral) under h into out.
func (j *cookieJar) mac(h hash.Hash, origin string, ephemeral []byte, out []byte) {
	h.Reset()
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(origin)))
	h.Write(n[:])
	io.WriteString(h, origin)
	h.Write(ephemeral)
	copy(out, h.Sum(j.sum[:0]))
}

// make returns the cookie for a first message with the given ephemeral key from origin.
func (j *cookieJar) make(now time.Time, origin string, ephemeral []byte) [cookieLen]byte {
	j.refresh(now)
	var c [cookieLen]byte
	j.mac(j.cur, origin, ephemeral, c[:])
	return c
}

// check reports whether cookie was made for (origin, ephemeral) under the current or the
// previous secret. The comparisons are constant-time.
func (j *cookieJar) check(now time.Time, origin string, ephemeral, cookie []byte) bool {
	j.refresh(now)
	var want [cookieLen]byte
	for _, h := range []hash.Hash{j.cur, j.prev} {
		if h == nil {
			continue
		}
		j.mac(h, origin, ephemeral, want[:])
		if hmac.Equal(want[:], cookie) {
			return true
		}
	}
	return false
}

// parseFirst splits a payload addressed to a listener: a first handshake message, alone
// ([typeHandshake][message 1]) or repeated with a cookie ([typeHandshakeCookie][message 1]
// [cookie]). cookie is nil for the first form. Anything else is not a first message.
func parseFirst(p []byte) (msg1, cookie []byte, ok bool) {
	switch {
	case len(p) == 1+xxMessage1Len && p[0] == typeHandshake:
		return p[1:], nil, true
	case len(p) == 1+xxMessage1Len+cookieLen && p[0] == typeHandshakeCookie:
		return p[1 : 1+xxMessage1Len], p[1+xxMessage1Len:], true
	}
	return nil, nil, false
}

// appendFirst appends the payload of a first handshake message, with cookie if it is not nil.
func appendFirst(dst, msg1, cookie []byte) []byte {
	if cookie == nil {
		return append(append(dst, typeHandshake), msg1...)
	}
	return append(append(append(dst, typeHandshakeCookie), msg1...), cookie...)
}

// parseCookieReply returns the cookie of a cookie reply ([typeCookie][cookie]).
func parseCookieReply(p []byte) (cookie []byte, ok bool) {
	if len(p) != 1+cookieLen || p[0] != typeCookie {
		return nil, false
	}
	return p[1:], true
}

// appendCookieReply appends the payload of a cookie reply.
func appendCookieReply(dst, cookie []byte) []byte {
	return append(append(dst, typeCookie), cookie...)
}
