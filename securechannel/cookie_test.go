package securechannel

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

// FuzzFirstMessage: parseFirst and parseCookieReply accept exactly their formats. Whatever
// they accept encodes back to the same bytes (decode -> encode -> decode is a fixpoint), and
// no strict prefix of it is accepted.
func FuzzFirstMessage(f *testing.F) {
	e := bytes.Repeat([]byte{7}, xxMessage1Len)
	cookie := bytes.Repeat([]byte{9}, cookieLen)
	f.Add(appendFirst(nil, e, nil))
	f.Add(appendFirst(nil, e, cookie))
	f.Add(appendCookieReply(nil, cookie))
	f.Add(append(appendFirst(nil, e, nil), 0))
	f.Add(append(appendFirst(nil, e, cookie), 0))
	f.Add([]byte{typeHandshakeCookie})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if msg1, c, ok := parseFirst(b); ok {
			enc := appendFirst(nil, msg1, c)
			if !bytes.Equal(enc, b) {
				t.Fatalf("appendFirst(parseFirst(%x)) = %x", b, enc)
			}
			msg1b, cb, ok := parseFirst(enc)
			if !ok || !bytes.Equal(msg1b, msg1) || !bytes.Equal(cb, c) || (cb == nil) != (c == nil) {
				t.Fatalf("parseFirst(appendFirst(parseFirst(%x))) = %x, %x, %v", b, msg1b, cb, ok)
			}
			if !IsFirstHandshake(b) {
				t.Fatalf("IsFirstHandshake(%x) = false for a first message", b)
			}
			for n := range len(b) {
				if _, _, ok := parseFirst(b[:n]); ok {
					t.Fatalf("parseFirst(first %d of %x) accepted a truncated message", n, b)
				}
			}
		} else if IsFirstHandshake(b) {
			t.Fatalf("IsFirstHandshake(%x) = true for what parseFirst refuses", b)
		}
		if c, ok := parseCookieReply(b); ok {
			if enc := appendCookieReply(nil, c); !bytes.Equal(enc, b) {
				t.Fatalf("appendCookieReply(parseCookieReply(%x)) = %x", b, enc)
			}
			for n := range len(b) {
				if _, ok := parseCookieReply(b[:n]); ok {
					t.Fatalf("parseCookieReply(first %d of %x) accepted a truncated reply", n, b)
				}
			}
		}
	})
}

// TestCookie: a cookie is good for its origin and ephemeral key only, through one rotation of
// the secret and not two.
func TestCookie(t *testing.T) {
	now := time.Unix(1e9, 0)
	j, err := newCookieJar(rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	e, e2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	c := j.make(now, "o:a", e)
	for _, tc := range []struct {
		desc   string
		at     time.Duration
		origin string
		e      []byte
		want   bool
	}{
		{"same origin and key", 0, "o:a", e, true},
		{"another origin", 0, "o:b", e, false},
		{"an origin that extends this one", 0, "o:a" + string(e[:1]), e[1:], false},
		{"another ephemeral key", 0, "o:a", e2, false},
		{"after one rotation", cookieRotation + time.Second, "o:a", e, true},
		{"after two rotations", 2*cookieRotation + 2*time.Second, "o:a", e, false},
	} {
		if got := j.check(now.Add(tc.at), tc.origin, tc.e, c[:]); got != tc.want {
			t.Errorf("%s: check = %v, want %v", tc.desc, got, tc.want)
		}
	}
	if j.check(now, "o:a", e, c[:cookieLen-1]) {
		t.Error("check accepted a short cookie")
	}
}
