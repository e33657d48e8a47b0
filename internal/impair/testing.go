package impair

import (
	"crypto/sha256"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// Join links test namespaces a and b through an impaired link, as netns.Link does with a
// veth pair: addrA and addrB are comma-separated prefixes (e.g. "10.9.0.1/24,fd09::1/64"),
// ab and ba the impairments of each direction. Its generator is seeded from the test's name,
// so a run's decisions repeat. It fails the test on error and closes the link when the test
// ends, before the namespaces made earlier go.
func Join(t testing.TB, a *netns.NS, addrA string, b *netns.NS, addrB string, ab, ba Impairment) *Link {
	t.Helper()
	seed := sha256.Sum256([]byte(t.Name()))
	l, err := New(Config{
		A:    Endpoint{Netns: a.Name, Addrs: prefixes(t, addrA)},
		B:    Endpoint{Netns: b.Name, Addrs: prefixes(t, addrB)},
		AtoB: ab, BtoA: ba,
		Rand: rand.NewChaCha8(seed),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func prefixes(t testing.TB, list string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("impair.Join: address %q: %v", s, err)
		}
		ps = append(ps, p)
	}
	return ps
}
