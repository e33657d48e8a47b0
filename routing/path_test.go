package routing

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in, out string // out is the canonical print; "" means same as in
		route   string // the Route of a resolvable path, "" if it has secure/project hops
	}{
		{"/ip4/127.0.0.1/tcp/4000/service/echo", "", "[1#127.0.0.1:4000, 0#echo]"},
		{"/ip6/::1/tcp/4000/service/echo", "", "[1#[::1]:4000, 0#echo]"},
		{"/ip6/0:0::1/tcp/4000", "/ip6/::1/tcp/4000", "[1#[::1]:4000]"},
		{"/dnsaddr/Hub.Example/tcp/4000/secure/api/service/echo", "/dnsaddr/hub.example/tcp/4000/secure/api/service/echo", ""},
		{"/project/acme/service/echo", "", ""},
		{"/service/echo", "", "[0#echo]"},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q) = %v", tt.in, err)
			continue
		}
		want := tt.out
		if want == "" {
			want = tt.in
		}
		if got := p.String(); got != want {
			t.Errorf("ParsePath(%q).String() = %q, want %q", tt.in, got, want)
		}
		r, err := p.Route()
		if tt.route == "" {
			if err == nil {
				t.Errorf("ParsePath(%q).Route() = %s, want an error", tt.in, &r)
			}
			continue
		}
		if err != nil || r.String() != tt.route {
			t.Errorf("ParsePath(%q).Route() = %s, %v; want %s", tt.in, &r, err, tt.route)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct{ in, wantIn string }{
		{"", "must start with /"},
		{"ip4/1.2.3.4/tcp/1", "must start with /"},
		{"/ip4/1.2.3/tcp/4000", "not an IPv4 address"},
		{"/ip4/::1/tcp/4000", "not an IPv4 address"},
		{"/ip6/1.2.3.4/tcp/4000", "not an IPv6 address"},
		{"/ip4/1.2.3.4/tcp/0", "not a number from 1 to 65535"},
		{"/ip4/1.2.3.4/tcp/70000", "not a number from 1 to 65535"},
		{"/ip4/1.2.3.4", "must be followed by /tcp/PORT"},
		{"/ip4/1.2.3.4/udp/53", "must be followed by /tcp/PORT"},
		{"/dnsaddr/-bad-/tcp/1", "not a host name"},
		{"/service", "needs a value"},
		{"/service/", "needs a value"},
		{"/bogus/x", "unknown protocol /bogus"},
		{"/service/" + strings.Repeat("a", 256), "at most 255"},
		{strings.Repeat("/service/a", 17), "more than 16 hops"},
	}
	for _, tt := range tests {
		_, err := ParsePath(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
			t.Errorf("ParsePath(%q) = %v, want an error containing %q", tt.in, err, tt.wantIn)
		}
	}
}
