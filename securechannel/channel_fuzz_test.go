package securechannel

import (
	"testing"

	"github.com/adjacentnet/adjacent/routing"
)

// FuzzChannelInput feeds arbitrary payloads to a listener and to an established channel's
// decryptor, as a peer on the wire could: nothing panics, and the channel still carries
// traffic afterwards.
func FuzzChannelInput(f *testing.F) {
	f.Add([]byte{typeHandshake}, true)
	f.Add(append([]byte{typeHandshake}, make([]byte, xxMessage1Len)...), true)
	f.Add(append([]byte{typeTransport, 0}, make([]byte, 40)...), false)
	f.Add([]byte{typeRefused, 'x'}, false)
	f.Add(append([]byte{typeCookie}, make([]byte, cookieLen)...), false)
	f.Add(append([]byte{typeHandshakeCookie}, make([]byte, xxMessage1Len+cookieLen)...), true)
	f.Add([]byte{}, false)
	p := newEchoPair(f, nil, nil)
	bobCh := p.listener.Channels()[0]
	f.Fuzz(func(t *testing.T, payload []byte, toListener bool) {
		to := routing.LocalAddress(bobCh.dec)
		if toListener {
			to = routing.LocalAddress("api")
		}
		p.inject(to, payload)
		if got := p.echo(t, []byte("still")); string(got) != "still" {
			t.Fatalf("echo after injecting %x = %q", payload, got)
		}
	})
}
