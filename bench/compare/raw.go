package main

import (
	"context"
	"fmt"
)

// setupRaw is the baseline: no tunnel, A connects to servers on B's veth address.
func setupRaw(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	if err := b.startServers(ctx, s, "open", b.direct.b, "0.0.0.0", openIperfPort, openBlastPort); err != nil {
		return endpoints{}, err
	}
	return endpoints{
		ns:    b.direct.a,
		iperf: fmt.Sprintf("%s:%d", directB, openIperfPort),
		blast: fmt.Sprintf("%s:%d", directB, openBlastPort),
	}, nil
}
