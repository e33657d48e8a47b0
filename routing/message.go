package routing

import (
	"fmt"
	"sync"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// Version is the first byte of every encoded message.
const Version = 1

// Message is a routed message: onward route, return route, payload, and node-local metadata
// that never goes on the wire. Messages are pooled; whoever holds one last calls Release.
//
// Wire form: version (1 byte), onward route, return route, payload (the rest). A route is a
// hop count (1 byte) and per hop its type (1 byte), value length (1 byte) and value.
type Message struct {
	Onward Route
	Return Route
	Local  Local
	body   *Buffer
	depth  uint8 // synchronous hops taken on this node, against routing loops
}

// Local is what a node knows about a message beside its bytes.
type Local struct {
	// Flow is the flow the message arrived on, FlowLocal for a message a worker sent.
	Flow FlowID
	// Spawner is the flow that created Flow (a listener), or FlowLocal.
	Spawner FlowID
	// Peer is the authenticated sender, set by the secure channel the message came out of.
	Peer Peer
	// Link is the transport connection the message's bytes arrived on, if any.
	Link Link
}

// Peer is the authenticated identity behind a secure channel. The secure channel knows it only
// through this interface; the control plane's implementation carries identity and attributes.
type Peer interface {
	Identifier() string
}

// Link is the transport connection a message arrived over.
type Link interface {
	// Address is the local address of the worker that sends over the link, which the link
	// pushes onto the return route of every message that arrives over it.
	Address() Address
	// Authenticated tells the link that a secure channel over it authenticated a peer the
	// control plane vouches for (a member, not a stranger come to enroll), so it may accept
	// the larger frames of an authenticated peer and leave the pre-authentication caps.
	Authenticated()
	// Done is closed when the connection is gone; channels over it end with it.
	Done() <-chan struct{}
	// Guarantees is what the link promises about the messages it carries (transport.go).
	Guarantees() Guarantees
}

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// NewMessage returns an empty message from the pool.
func NewMessage() *Message { return messagePool.Get().(*Message) }

// Release returns m and its body to their pools. m must not be used afterwards.
func (m *Message) Release() {
	m.body.Release()
	m.body = nil
	m.Onward.Reset()
	m.Return.Reset()
	m.Local = Local{}
	m.depth = 0
	messagePool.Put(m)
}

// Payload returns the payload; it aliases the message's buffer.
func (m *Message) Payload() []byte {
	if m.body == nil {
		return nil
	}
	return m.body.Bytes()
}

// SetPayload copies p in as the payload.
func (m *Message) SetPayload(p []byte) {
	if m.body == nil || len(m.body.data) < Headroom+len(p)+Tailroom {
		m.SetBody(NewBuffer(len(p)))
	}
	m.body.SetBytes(p)
}

// Body returns the buffer that holds the payload, allocating an empty one if there is none.
// Layers that frame the payload in place work on it directly.
func (m *Message) Body() *Buffer {
	if m.body == nil {
		m.body = NewBuffer(0)
	}
	return m.body
}

// SetBody makes b the payload buffer; m takes ownership of b and releases its old one.
func (m *Message) SetBody(b *Buffer) {
	if m.body != nil && m.body != b {
		m.body.Release()
	}
	m.body = b
}

// TakeBody removes the payload buffer from m and hands it, with ownership, to the caller.
func (m *Message) TakeBody() *Buffer {
	b := m.Body()
	m.body = nil
	return b
}

// HeaderLen returns the encoded size of the version and both routes.
func (m *Message) HeaderLen() int { return 1 + m.Onward.encodedLen() + m.Return.encodedLen() }

// PutHeader writes the version and routes in front of the payload, in place: afterwards
// Body().Bytes() is the message's wire form.
func (m *Message) PutHeader() {
	h := m.Body().Prepend(m.HeaderLen())
	h[0] = Version
	n := 1 + m.Onward.encodedLen()
	m.Onward.put(h[1:n])
	m.Return.put(h[n:])
}

// AppendTo appends the wire form of m to b.
func (m *Message) AppendTo(b []byte) []byte {
	b = append(b, Version)
	b = m.Onward.appendTo(b)
	b = m.Return.appendTo(b)
	return append(b, m.Payload()...)
}

// DecodeBody parses the wire form held in m's body, in place: the routes are copied into m and
// the body is advanced past the header, so the payload is what remains.
func (m *Message) DecodeBody() error {
	b := m.Body()
	n, err := m.decodeHeader(b.Bytes())
	if err != nil {
		return err
	}
	b.Advance(n)
	return nil
}

// Decode parses a whole wire-form message, copying the payload into m's own buffer.
func (m *Message) Decode(p []byte) error {
	n, err := m.decodeHeader(p)
	if err != nil {
		return err
	}
	m.SetPayload(p[n:])
	return nil
}

func (m *Message) decodeHeader(p []byte) (int, error) {
	var r wire.Reader
	r.Reset(p)
	if v := r.U8("version"); r.Err() == nil && v != Version {
		return 0, fmt.Errorf("routing: decode message: version %d: %w", v, ErrVersion)
	}
	if err := m.Onward.decode(&r, "onward route"); err != nil {
		return 0, fmt.Errorf("routing: decode message: %w", err)
	}
	if err := m.Return.decode(&r, "return route"); err != nil {
		return 0, fmt.Errorf("routing: decode message: %w", err)
	}
	return len(p) - r.Len(), nil
}

// String describes m for logs, without its payload.
func (m *Message) String() string {
	return fmt.Sprintf("message onward=%s return=%s payload=%dB", &m.Onward, &m.Return, len(m.Payload()))
}
