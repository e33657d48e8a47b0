package routing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/adjacentnet/adjacent/internal/wire"
)

func testMessage(payload string) *Message {
	m := NewMessage()
	m.Onward = MustRoute(TCPAddress("127.0.0.1:4000"), LocalAddress("echo"))
	m.Return = MustRoute(LocalAddress("reply"))
	m.SetPayload([]byte(payload))
	return m
}

func TestMessageRoundTrip(t *testing.T) {
	m := testMessage("hello")
	enc := m.AppendTo(nil)
	want := []byte{Version,
		2, 1, 14, '1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '4', '0', '0', '0', 0, 4, 'e', 'c', 'h', 'o',
		1, 0, 5, 'r', 'e', 'p', 'l', 'y',
		'h', 'e', 'l', 'l', 'o'}
	if !bytes.Equal(enc, want) {
		t.Fatalf("AppendTo = %x, want %x", enc, want)
	}
	// In place: the header is written into the body's headroom.
	m.PutHeader()
	if !bytes.Equal(m.Body().Bytes(), want) {
		t.Fatalf("PutHeader body = %x, want %x", m.Body().Bytes(), want)
	}
	got := NewMessage()
	got.SetBody(m.TakeBody())
	if err := got.DecodeBody(); err != nil {
		t.Fatal(err)
	}
	if !got.Onward.Equal(&m.Onward) || !got.Return.Equal(&m.Return) || string(got.Payload()) != "hello" {
		t.Fatalf("DecodeBody = %v, want %v", got, m)
	}
	m.Release()
	got.Release()
}

func TestMessageDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, wire.ErrTruncated},
		{"version", []byte{2, 0, 0}, ErrVersion},
		{"hops over limit", []byte{1, 17}, wire.ErrTooLong},
		{"truncated hop", []byte{1, 1, 0, 5, 'a'}, wire.ErrTruncated},
		{"empty address", []byte{1, 1, 0, 0, 0}, ErrEmptyAddress},
		{"missing return route", []byte{1, 0}, wire.ErrTruncated},
	}
	for _, tt := range tests {
		m := NewMessage()
		if err := m.Decode(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: Decode(%x) = %v, want %v", tt.name, tt.in, err, tt.want)
		}
		m.Release()
	}
}

func TestMessageReply(t *testing.T) {
	m := testMessage("x")
	if err := m.Reply(LocalAddress("echo")); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Onward.String(), "[0#reply]"; got != want {
		t.Errorf("Onward = %s, want %s", got, want)
	}
	if got, want := m.Return.String(), "[0#echo]"; got != want {
		t.Errorf("Return = %s, want %s", got, want)
	}
	m.Release()
}

func TestBufferPrependPastHeadroom(t *testing.T) {
	b := NewBuffer(10)
	copy(b.Extend(3), "abc")
	copy(b.Prepend(Headroom+100), bytes.Repeat([]byte{'h'}, Headroom+100))
	if got := b.Bytes(); len(got) != Headroom+103 || string(got[len(got)-3:]) != "abc" || got[0] != 'h' {
		t.Fatalf("Bytes() after a large prepend = %q...", got[:8])
	}
	b.Release()
}

func TestMessageCodecZeroAllocs(t *testing.T) {
	m := testMessage(string(make([]byte, 1024)))
	allocs := testing.AllocsPerRun(1000, func() {
		m.PutHeader()
		if err := m.DecodeBody(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("PutHeader+DecodeBody: %v allocations per message, want 0", allocs)
	}
	m.Release()
}
