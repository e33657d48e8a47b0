package main

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRelayClientCannotStarveOwner is hole 3 of issue 12, through real nodes: every
// handshake relayed to the bank reaches its listener over the bank's one channel to the hub.
// Two members flood bogus first handshake messages through the bank's relay, faster than
// pending handshakes time out, while another member creates secure channels through the same
// relay; they all succeed, because the bank admits handshakes per relay client, not per link.
// Each flooder gets its origin's share of Diffie–Hellman and then cookies, which puts the
// bank's listener under load (32 pending), so the honest handshakes take the cookie round
// trip through the relay too. Before, the flood held the 16 places of the link and every
// honest handshake timed out.
func TestRelayClientCannotStarveOwner(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	evil := []string{member(t, h), member(t, h)}
	const toBank = "/project/acme/service/forward_to_postgres/service/api"

	// A first handshake message: the type byte 1 and 32 bytes of ephemeral key (letters, to
	// pass as command-line text). A cookie reply is the type byte 4 and 16 bytes.
	bogus := func() string {
		b := []byte{1}
		for range 32 {
			b = append(b, byte('a'+rand.IntN(26)))
		}
		return string(b)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var cookies [2]atomic.Int32
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, _, _ := cli(t, "--home", evil[i%2], "message", "send", bogus(), "--to", toBank, "--timeout", "300ms")
				if strings.HasPrefix(out, "\x04") {
					cookies[i%2].Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); cookies[0].Load() == 0 || cookies[1].Load() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s of flooding, cookies for the two flooders: %d and %d, want some each", cookies[0].Load(), cookies[1].Load())
		}
	}

	for i := range 3 {
		out, errOut, code := cli(t, "--home", analysis, "secure-channel", "create", "--to", toBank, "--timeout", "5s")
		if code != 0 || !strings.HasPrefix(out, "/service/") {
			t.Fatalf("honest secure-channel create %d through the flooded relay: exit %d, %q %q", i, code, out, errOut)
		}
	}
}
