package main

import (
	"context"
	"fmt"
)

// setupSocat is two plain socat hops: socat in A accepts on loopback and connects to socat
// on B's veth address, which connects to the server. No encryption: the cost of relaying
// bytes through two user-space copies.
func setupSocat(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	li, lb, lp := localPorts("socat")
	for _, f := range []struct {
		label       string
		local, port int // A's loopback port, B's veth port
		server      int
	}{{"iperf", li, 9201, iperfPort}, {"blast", lb, 9700, blastPort}, {"pg", lp, 9432, pgPort}} {
		p, err := s.start(b.direct.b, "socat-b-"+f.label, nil, b.tools.path["socat"],
			fmt.Sprintf("TCP-LISTEN:%d,bind=%s,reuseaddr,fork", f.port, directB), fmt.Sprintf("TCP:127.0.0.1:%d", f.server))
		if err != nil {
			return endpoints{}, err
		}
		if err := waitListen(ctx, b.direct.b, f.port, p); err != nil {
			return endpoints{}, fmt.Errorf("socat in B: %w", err)
		}
		p, err = s.start(b.direct.a, "socat-a-"+f.label, nil, b.tools.path["socat"],
			fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", f.local), fmt.Sprintf("TCP:%s:%d", directB, f.port))
		if err != nil {
			return endpoints{}, err
		}
		if err := waitListen(ctx, b.direct.a, f.local, p); err != nil {
			return endpoints{}, fmt.Errorf("socat in A: %w", err)
		}
	}
	return local(b.direct.a, li, lb, lp), nil
}
