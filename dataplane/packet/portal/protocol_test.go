package portal

import (
	"bytes"
	"testing"
)

// A batch splits back into exactly the packets it was made of; any other body is refused
// without reading past its end.
func FuzzEachPacket(f *testing.F) {
	f.Add(appendPacket(appendPacket(nil, []byte{0x45, 1, 2}), []byte{9}))
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 5, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		var again []byte
		err := eachPacket(body, func(p []byte) {
			if len(p) == 0 {
				t.Fatal("an empty packet was handed out")
			}
			again = appendPacket(again, p)
		})
		if err == nil && !bytes.Equal(again, body) {
			t.Fatalf("a body of %d bytes split into records that make %d bytes", len(body), len(again))
		}
		if err != nil && !bytes.HasPrefix(body, again) {
			t.Fatal("the records handed out before the fault are not the body's")
		}
	})
}
