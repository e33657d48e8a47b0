// Command reliability runs issue 16's fault scenarios and prints one table: scenario, load
// held, faults injected, bad inputs tried, bytes lost (which must be 0) and result. It is
// what `make reliability` runs, from the module's root:
//
//	go run ./internal/cmd/reliability [-out docs/reliability.md] [-fuzztime 10s]
//
// The scenarios are tests of cmd/adjacent (TestImpairedHub, the kill -9, store and target
// restart tests, TestSoak), run once with $ADJACENT_RELIABILITY_OUT set, so that each
// appends its row as a JSON line; $ADJACENT_IMPAIRED_BYTES (default here 1GiB) and
// $ADJACENT_SOAK_DURATION (default 2m) size them. The bad inputs are every fuzz target of
// the module, run for -fuzztime each, counted by the executions go test reports. The table
// goes to standard output and, as markdown with the command line that made it, to -out.
// It exits 1 when a scenario failed or lost bytes, and needs root for the namespaces.
package main
