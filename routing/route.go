package routing

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/adjacentnet/adjacent/internal/wire"
)

// Route limits, enforced by every operation and by the codec.
const (
	MaxHops       = 16
	MaxRouteBytes = 512 // encoded entries of one route
)

// Route is a list of addresses, kept encoded (type, length, value per hop) in a fixed array
// so that popping, pushing and decoding never allocate. The entries sit at the end of the
// array, which makes the two hot operations, pop and push at the front, moves of an index.
// The zero value is an empty route. Routes are values meant to live inside a Message; copy one
// with plain assignment.
type Route struct {
	used uint16 // bytes of a in use, at its end
	n    uint8  // hops
	a    [MaxRouteBytes]byte
}

// NewRoute returns a route of the given addresses.
func NewRoute(addrs ...Address) (Route, error) {
	var r Route
	for i := len(addrs) - 1; i >= 0; i-- {
		if err := r.Push(addrs[i]); err != nil {
			return Route{}, err
		}
	}
	return r, nil
}

// MustRoute is NewRoute for addresses known to be valid.
func MustRoute(addrs ...Address) Route {
	r, err := NewRoute(addrs...)
	if err != nil {
		panic(err)
	}
	return r
}

func (r *Route) entries() []byte { return r.a[MaxRouteBytes-int(r.used):] }

// Len returns the number of hops.
func (r *Route) Len() int { return int(r.n) }

// Next returns the first hop without copying: value aliases the route and stays valid until
// the route is next changed. ok is false for an empty route.
func (r *Route) Next() (t Type, value []byte, ok bool) {
	if r.n == 0 {
		return 0, nil, false
	}
	e := r.entries()
	return Type(e[0]), e[2 : 2+int(e[1])], true
}

// NextAddress returns a copy of the first hop, or the zero Address for an empty route.
func (r *Route) NextAddress() Address {
	t, v, _ := r.Next()
	return Address{t, string(v)}
}

// Pop removes the first hop; it does nothing on an empty route.
func (r *Route) Pop() {
	if r.n == 0 {
		return
	}
	e := r.entries()
	r.used -= uint16(2 + int(e[1]))
	r.n--
}

// Push inserts a at the front.
func (r *Route) Push(a Address) error {
	if err := a.validate(); err != nil {
		return err
	}
	return pushEntry(r, a.Type, a.Value)
}

// PushBytes inserts the address (t, value) at the front without converting value to a string.
func (r *Route) PushBytes(t Type, value []byte) error {
	if len(value) == 0 || len(value) > MaxAddressLen {
		return fmt.Errorf("routing: push address of %d bytes: %w", len(value), ErrEmptyAddress)
	}
	return pushEntry(r, t, value)
}

func pushEntry[V ~string | ~[]byte](r *Route, t Type, value V) error {
	size := 2 + len(value)
	if int(r.n) >= MaxHops || int(r.used)+size > MaxRouteBytes {
		return fmt.Errorf("routing: push %d#%s: %w", t, value, ErrRouteTooLong)
	}
	r.used += uint16(size)
	e := r.entries()
	e[0], e[1] = byte(t), byte(len(value))
	copy(e[2:], value)
	r.n++
	return nil
}

// Append adds a at the end. It moves every entry, so it is for building routes, not for
// per-message work.
func (r *Route) Append(a Address) error {
	if err := a.validate(); err != nil {
		return err
	}
	size := 2 + len(a.Value)
	if int(r.n) >= MaxHops || int(r.used)+size > MaxRouteBytes {
		return fmt.Errorf("routing: append %s: %w", a, ErrRouteTooLong)
	}
	old := r.entries()
	r.used += uint16(size)
	e := r.entries()
	copy(e, old)
	tail := e[len(old):]
	tail[0], tail[1] = byte(a.Type), byte(len(a.Value))
	copy(tail[2:], a.Value)
	r.n++
	return nil
}

// Prepend inserts all of p in front of r: r becomes p followed by r.
func (r *Route) Prepend(p *Route) error {
	if int(r.n)+int(p.n) > MaxHops || int(r.used)+int(p.used) > MaxRouteBytes {
		return fmt.Errorf("routing: prepend %s to %s: %w", p, r, ErrRouteTooLong)
	}
	pe := p.entries()
	r.used += p.used
	copy(r.entries(), pe)
	r.n += p.n
	return nil
}

// HasPrefix reports whether r starts with the hops of p.
func (r *Route) HasPrefix(p *Route) bool {
	return r.n >= p.n && bytes.HasPrefix(r.entries(), p.entries())
}

// TrimPrefix removes the hops of p from the front of r, which must start with them.
func (r *Route) TrimPrefix(p *Route) {
	r.used -= p.used
	r.n -= p.n
}

// Reset empties the route.
func (r *Route) Reset() { r.used, r.n = 0, 0 }

// Addresses returns a copy of the hops.
func (r *Route) Addresses() []Address {
	out := make([]Address, 0, r.n)
	e := r.entries()
	for len(e) > 0 {
		n := int(e[1])
		out = append(out, Address{Type(e[0]), string(e[2 : 2+n])})
		e = e[2+n:]
	}
	return out
}

// Equal reports whether r and o hold the same hops.
func (r *Route) Equal(o *Route) bool { return r.n == o.n && bytes.Equal(r.entries(), o.entries()) }

// String prints the hops as [0#api, 1#host:port].
func (r *Route) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, a := range r.Addresses() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	b.WriteByte(']')
	return b.String()
}

// encodedLen is the size of the route on the wire: a hop count and the entries.
func (r *Route) encodedLen() int { return 1 + int(r.used) }

// put writes the wire form into b, which is exactly encodedLen bytes long.
func (r *Route) put(b []byte) {
	b[0] = r.n
	copy(b[1:], r.entries())
}

// appendTo appends the wire form to b.
func (r *Route) appendTo(b []byte) []byte { return append(append(b, r.n), r.entries()...) }

// decode reads a wire route. It checks every bound before copying the entries.
func (r *Route) decode(rd *wire.Reader, field string) error {
	n := rd.Count(field, MaxHops)
	span := rd.Rest() // measured below, then the unread part is handed back
	total := 0
	for i := 0; i < n; i++ {
		if total+2 > len(span) {
			return fmt.Errorf("%s hop %d: %w", field, i, wire.ErrTruncated)
		}
		l := int(span[total+1])
		if l == 0 {
			return fmt.Errorf("%s hop %d: %w", field, i, ErrEmptyAddress)
		}
		total += 2 + l
		if total > len(span) {
			return fmt.Errorf("%s hop %d: %w", field, i, wire.ErrTruncated)
		}
		if total > MaxRouteBytes {
			return fmt.Errorf("%s: more than %d bytes: %w", field, MaxRouteBytes, ErrRouteTooLong)
		}
	}
	if err := rd.Err(); err != nil {
		return err
	}
	r.used, r.n = uint16(total), uint8(n)
	copy(r.entries(), span[:total])
	rd.Reset(span[total:])
	return nil
}
