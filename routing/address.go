package routing

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is an address's transport type. The router delivers Local addresses itself and hands
// every other type to the Transport registered for it.
type Type uint8

// Address types. The values are on the wire and match Ockam's.
const (
	TypeLocal Type = 0 // a worker name on the node that holds the route
	TypeTCP   Type = 1 // host:port of a TCP transport listener
)

// MaxAddressLen bounds the value of one address.
const MaxAddressLen = 255

// Address is one hop of a route.
type Address struct {
	Type  Type
	Value string
}

// LocalAddress returns the address of the local worker name.
func LocalAddress(name string) Address { return Address{TypeLocal, name} }

// TCPAddress returns the address of a TCP listener at hostport.
func TCPAddress(hostport string) Address { return Address{TypeTCP, hostport} }

// String prints the address as Ockam does: type#value.
func (a Address) String() string { return strconv.Itoa(int(a.Type)) + "#" + a.Value }

// ParseAddress parses the type#value form printed by String; a bare value is a local address.
func ParseAddress(s string) (Address, error) {
	t, v, ok := strings.Cut(s, "#")
	if !ok {
		t, v = "0", s
	}
	n, err := strconv.ParseUint(t, 10, 8)
	if err != nil {
		return Address{}, fmt.Errorf("routing: address %q: type %q is not a number from 0 to 255", s, t)
	}
	a := Address{Type(n), v}
	return a, a.validate()
}

func (a Address) validate() error {
	if a.Value == "" {
		return fmt.Errorf("routing: address %s: %w", a, ErrEmptyAddress)
	}
	if len(a.Value) > MaxAddressLen {
		return fmt.Errorf("routing: address of %d bytes, at most %d: %w", len(a.Value), MaxAddressLen, ErrRouteTooLong)
	}
	return nil
}
