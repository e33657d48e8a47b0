package packet

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// A reset answers a segment as the kernel would: at its acknowledgment number when it has
// one (the number the receiver expects, so RFC 5961 takes it at once), else acknowledging it;
// its checksums verify, for both families.
func TestResetFor(t *testing.T) {
	for _, c := range []struct {
		name      string
		flags     header.TCPFlags
		payload   int
		wantFlags header.TCPFlags
		wantSeq   uint32
		wantAck   uint32
	}{
		{"ack with data", header.TCPFlagAck | header.TCPFlagPsh, 10, header.TCPFlagRst, 2000, 0},
		{"syn", header.TCPFlagSyn, 0, header.TCPFlagRst | header.TCPFlagAck, 0, 1001},
		{"syn with data and fin", header.TCPFlagSyn | header.TCPFlagFin, 5, header.TCPFlagRst | header.TCPFlagAck, 0, 1007},
	} {
		for _, fam := range [][2]string{{"4", ""}, {"6", ""}} {
			src, dst := client4, virt4
			if fam[0] == "6" {
				src, dst = client6, virt6
			}
			p, err := Parse(build(src, dst, c.flags, nil, make([]byte, c.payload)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(AppendResetFor(nil, &p))
			if err != nil {
				t.Fatalf("%s/%s: the reset does not parse: %v", c.name, fam[0], err)
			}
			if err := r.Verify(); err != nil {
				t.Errorf("%s/%s: %v", c.name, fam[0], err)
			}
			tcp := r.TCP()
			if r.Src() != dst || r.Dst() != src || r.Flags() != c.wantFlags || tcp.SequenceNumber() != c.wantSeq || tcp.AckNumber() != c.wantAck {
				t.Errorf("%s/%s: reset %v->%v flags %v seq %d ack %d; want %v->%v flags %v seq %d ack %d", c.name, fam[0],
					r.Src(), r.Dst(), r.Flags(), tcp.SequenceNumber(), tcp.AckNumber(), dst, src, c.wantFlags, c.wantSeq, c.wantAck)
			}
		}
	}
	p, _ := Parse(build(client4, virt4, header.TCPFlagRst, nil, nil))
	if b := AppendResetFor(nil, &p); len(b) != 0 {
		t.Errorf("a RST was answered with %d bytes; a RST is never answered", len(b))
	}
	r, _ := Parse(AppendReset(nil, virt4, client4, 77))
	if r.Flags() != header.TCPFlagRst || r.TCP().SequenceNumber() != 77 || r.Verify() != nil {
		t.Errorf("AppendReset: flags %v seq %d verify %v; want RST at 77, valid", r.Flags(), r.TCP().SequenceNumber(), r.Verify())
	}
}
