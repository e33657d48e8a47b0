package main

import "context"

// setupRaw is the baseline: no tunnel, A connects to servers on B's veth address.
func setupRaw(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	if err := b.startServers(ctx, s, "open", b.direct.b, "0.0.0.0", openIperfPort, openBlastPort); err != nil {
		return endpoints{}, err
	}
	return at(b.direct.a, directB), nil
}
