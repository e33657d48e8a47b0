package routing

import (
	"errors"
	"strings"
	"testing"
)

func TestRoutePushPop(t *testing.T) {
	r := MustRoute(LocalAddress("a"), TCPAddress("10.0.0.1:4000"), LocalAddress("echo"))
	if got, want := r.String(), "[0#a, 1#10.0.0.1:4000, 0#echo]"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	if r.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", r.Len())
	}
	r.Pop()
	if got := r.NextAddress(); got != TCPAddress("10.0.0.1:4000") {
		t.Fatalf("after Pop, Next = %v", got)
	}
	if err := r.Push(LocalAddress("b")); err != nil {
		t.Fatal(err)
	}
	if err := r.Append(LocalAddress("z")); err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "[0#b, 1#10.0.0.1:4000, 0#echo, 0#z]"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	p := MustRoute(LocalAddress("x"), LocalAddress("y"))
	if err := r.Prepend(&p); err != nil {
		t.Fatal(err)
	}
	if got, want := r.String(), "[0#x, 0#y, 0#b, 1#10.0.0.1:4000, 0#echo, 0#z]"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	for r.Len() > 0 {
		r.Pop()
	}
	if _, _, ok := r.Next(); ok {
		t.Fatal("Next on empty route reports ok")
	}
	r.Pop() // no-op on empty
}

func TestRouteLimits(t *testing.T) {
	var r Route
	for i := 0; i < MaxHops; i++ {
		if err := r.Push(LocalAddress("w")); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := r.Push(LocalAddress("w")); !errors.Is(err, ErrRouteTooLong) {
		t.Fatalf("push past MaxHops = %v, want ErrRouteTooLong", err)
	}
	var big Route
	long := LocalAddress(strings.Repeat("x", 255))
	if err := big.Push(long); err != nil {
		t.Fatal(err)
	}
	if err := big.Push(long); !errors.Is(err, ErrRouteTooLong) {
		t.Fatalf("push past MaxRouteBytes = %v, want ErrRouteTooLong", err)
	}
	if err := big.Push(LocalAddress("")); !errors.Is(err, ErrEmptyAddress) {
		t.Fatalf("push empty = %v, want ErrEmptyAddress", err)
	}
	if err := big.Push(LocalAddress(strings.Repeat("x", 256))); !errors.Is(err, ErrRouteTooLong) {
		t.Fatalf("push 256-byte address = %v, want ErrRouteTooLong", err)
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    Address
		wantErr bool
	}{
		{"0#echo", LocalAddress("echo"), false},
		{"echo", LocalAddress("echo"), false},
		{"1#127.0.0.1:4000", TCPAddress("127.0.0.1:4000"), false},
		{"x#y", Address{}, true},
		{"1#", Address{}, true},
		{"300#a", Address{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseAddress(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
