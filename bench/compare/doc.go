// Command compare is the side-by-side comparison that `make bench` runs (issue 6): the
// adjacent portal, direct and through a hub, beside raw TCP and the tunnels a user would
// pick instead (ssh -L, stunnel, wireguard-go, Nebula, socat, and ssh -R plus ssh -L through
// a hub), each measured the same way in network namespaces it builds and removes: one iperf3
// stream each way, 64-byte request/response round trips, connect plus first round trip
// (blast; internal/connprobe defines it), and pgbench select-only transactions per second
// with 8 clients against a PostgreSQL server behind the far end (one per topology, its
// tables made once). -measures chooses among them; a new mode plugs in at modes (modes.go).
// -rounds N runs the modes N times in turns and reports each figure's median.
//
// It prints a table with the ratios that issue 6's goals use and writes it as Markdown
// (results.md), JSON (results.json) and an SVG chart (results.svg) into -out, with every
// process's log under -out/logs. It needs root; scripts/bench.sh installs the peers first.
// A peer whose tool is missing is skipped with a note; a mode that fails is reported as
// failed and makes the exit status 1 after the report is written.
package main
