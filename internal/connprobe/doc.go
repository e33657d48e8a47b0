// Package connprobe holds the one definition of "connect plus first round trip", the figure
// that `make bench` (blast connect, bench/compare) and dataplane's BenchmarkConnect both
// report, so that their ratios to ssh -L can be compared.
//
// Connect plus first round trip is the time from just before the client's connect() until
// it has read the whole response to its first request, the request written in one write
// (with any header the server's protocol wants) as soon as connect() returns. It counts:
// the TCP handshake with whatever listens at the address (the inlet, ssh's -L port, the
// server itself for raw TCP); the portal's connect step (the inlet's connect to the outlet,
// the outlet's dial of the target, its answer); and the request and response through the
// established path. It does not count the close: the clock stops when the response is in,
// and the caller closes afterwards, so one connection's teardown overlaps the next connect
// the same way in every harness.
package connprobe
