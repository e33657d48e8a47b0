package main

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRelayClientCannotStarveOwner is hole 3 of issue 12, through real nodes: every
// handshake relayed to the bank reaches its listener over the bank's one channel to the hub.
// A member floods bogus first handshake messages through the bank's relay, faster than
// pending handshakes time out, while another member creates secure channels through the same
// relay; they all succeed, because the bank admits handshakes per relay client, not per link.
// Before, the flood held the 16 places of the link and every honest handshake timed out.
func TestRelayClientCannotStarveOwner(t *testing.T) {
	h := hub(t, "acme")
	bank := member(t, h, "--relay", "postgres")
	mustCLI(t, "--home", bank, "relay", "create", "postgres")
	analysis := member(t, h)
	evil := member(t, h)
	const toBank = "/project/acme/service/forward_to_postgres/service/api"

	// A first handshake message: the type byte 1 and 32 bytes of ephemeral key (letters, to
	// pass as command-line text).
	bogus := func() string {
		b := []byte{1}
		for range 32 {
			b = append(b, byte('a'+rand.IntN(26)))
		}
		return string(b)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cli(t, "--home", evil, "message", "send", bogus(), "--to", toBank, "--timeout", "300ms")
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(2 * time.Second) // the flood is well under way: far more than 16 sent

	for i := range 3 {
		out, errOut, code := cli(t, "--home", analysis, "secure-channel", "create", "--to", toBank, "--timeout", "5s")
		if code != 0 || !strings.HasPrefix(out, "/service/") {
			t.Fatalf("honest secure-channel create %d through the flooded relay: exit %d, %q %q", i, code, out, errOut)
		}
	}
}
