// Command blast is the traffic tool of adjacent's integration tests and benchmarks: a server
// and clients that move deterministic pseudo-random streams over TCP and check every byte,
// test half-close behaviour, and time round trips and connects. Each side's bytes come from
// ChaCha8 seeded by its role, so the other side can verify them without a copy.
//
//	blast serve -listen ADDR                      answer every mode below
//	blast exchange -to ADDR -bytes N              send and receive N bytes at once, verified
//	blast upload|download -to ADDR -bytes N       one direction only, with throughput
//	blast halfclose -to ADDR                      8 MiB up, half-close, expect 1 MiB then EOF
//	blast rr -to ADDR -count N -size 64           request/response round trips, percentiles
//	blast connect -to ADDR -count N               connect + first round trip (internal/connprobe), percentiles
//	blast rate -to ADDR -parallel 32 -seconds 3   connects (+ one round trip) per second
//	blast idle -to ADDR -count N                  hold N connections open until stdin ends
//
// It prints one line of results; on any failure it prints the error and exits 1.
package main
