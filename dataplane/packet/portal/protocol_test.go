package portal

import (
	"bytes"
	"testing"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// A batch splits back into exactly the packets, and offloads, it was made of; any other body is refused
// without reading past its end.
func FuzzEachPacket(f *testing.F) {
	f.Add(appendPacket(appendPacket(nil, []byte{0x45, 1, 2}, packet.Offload{}), []byte{9}, packet.Offload{Checksum: packet.Partial}))
	f.Add(appendPacket(nil, []byte{0x45, 1, 2}, packet.Offload{Checksum: packet.Partial, Segment: 1448}))
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 5, 1})
	f.Add([]byte{0, 1, 0xff, 0xff, 1})
	f.Add([]byte{0, 1, 0, 1, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		var again []byte
		err := eachPacket(body, func(p []byte, o packet.Offload) {
			if len(p) == 0 {
				t.Fatal("an empty packet was handed out")
			}
			if o.Checksum != packet.Partial && o.Segment != 0 {
				t.Fatalf("a complete checksum with segments of %d bytes", o.Segment)
			}
			if o.Segment != 0 && o.Segment < minSegment {
				t.Fatalf("segments of %d bytes handed out, under %d", o.Segment, minSegment)
			}
			again = appendPacket(again, p, o)
		})
		if err == nil && !bytes.Equal(again, body) {
			t.Fatalf("a body of %d bytes split into records that make %d bytes", len(body), len(again))
		}
		if err != nil && !bytes.HasPrefix(body, again) {
			t.Fatal("the records handed out before the fault are not the body's")
		}
	})
}
