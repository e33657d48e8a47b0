package tcp

import (
	"bytes"
	"testing"
)

// FuzzFrames feeds a byte stream to the frame reader: it never panics, never accepts a frame
// over the limit, and the frames it reads re-encode to exactly the bytes it consumed; a
// stream cut short inside a frame fails.
func FuzzFrames(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, []byte("hello")), nil))
	f.Add([]byte{0x40, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 9, 1, 2})
	f.Add([]byte{0x80, 0, 0, 0, 1, 2, 3, 4}) // negative as a 32-bit int
	const limit = 1024
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		fr := frameReader{r: r}
		var again []byte
		for {
			hdr, err := fr.header()
			if err != nil {
				break
			}
			n, err := checkLength(hdr, limit)
			if err != nil {
				return // refused before reading or allocating the body
			}
			if n == 0 {
				again = appendFrame(again, nil)
				continue
			}
			b, err := fr.body(n)
			if err != nil {
				if r.Len() != 0 {
					t.Fatalf("incomplete frame with %d bytes unread", r.Len())
				}
				return
			}
			if b.Len() != n {
				t.Fatalf("frame of %d bytes read as %d", n, b.Len())
			}
			again = appendFrame(again, b.Bytes())
			b.Release()
		}
		consumed := stream[:len(stream)-r.Len()]
		if !bytes.HasPrefix(consumed, again) || len(consumed)-len(again) >= frameHeaderLen {
			t.Fatalf("frames re-encode to %x, stream consumed %x", again, consumed)
		}
	})
}
