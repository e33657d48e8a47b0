package packet

import (
	"fmt"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// BenchmarkRewrite is the per-packet cost of parse + translate + incremental checksums, which
// does not grow with the payload, beside SetChecksums and Verify, which do.
func BenchmarkRewrite(b *testing.B) {
	for _, fam := range []struct {
		name                 string
		src, dst, nsrc, ndst netip.AddrPort
	}{
		{"ipv4", client4, virt4, local4, target4},
		{"ipv6", client6, virt6, local6, target6},
	} {
		for _, size := range []int{0, 1400, 65000} {
			pkt := build(fam.src, fam.dst, header.TCPFlagAck, nil, make([]byte, size))
			b.Run(fmt.Sprintf("%s/payload=%d/op=rewrite", fam.name, size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(pkt)))
				for i := 0; b.Loop(); i++ {
					p, _ := Parse(pkt)
					if i%2 == 0 {
						p.Rewrite(fam.nsrc, fam.ndst, Complete)
					} else {
						p.Rewrite(fam.src, fam.dst, Complete)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/payload=%d/op=setchecksums", fam.name, size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(pkt)))
				for b.Loop() {
					p, _ := Parse(pkt)
					p.SetChecksums()
				}
			})
		}
	}
}
