// Command impair joins two network namespaces through an impaired link (package
// internal/impair) until it is interrupted, for make targets and scripts on kernels without
// sch_netem:
//
//	go run ./internal/cmd/impair -a NS1 -b NS2 -addr-a 10.9.0.1/24 -addr-b 10.9.0.2/24 \
//		-delay 50ms -jitter 10ms -loss 1% -dup 1% -reorder 1% -rate 100mbit
//
// Each impairment applies to both directions, or, written X/Y, X to packets from A to B and
// Y to packets from B to A: -delay 50ms/5ms. Probabilities are percentages (1%) or fractions
// (0.01); rates are bit/s with an optional kbit, mbit or gbit. -addr-a and -addr-b take
// comma-separated prefixes (IPv4 and IPv6). An empty -a or -b is this process's namespace.
//
// It prints "impair: up ..." on standard output once both devices are up, the counters of
// each direction every -stats interval and when it ends on SIGINT or SIGTERM, and exits 0;
// on an error it prints it and exits 1. It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to
// enter the namespaces).
package main
