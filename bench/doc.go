// Package bench measures the portal path: Go benchmarks of its pieces, and the side-by-side
// comparison (driven by `make bench`) of the portal with raw TCP and with what a user would
// pick instead, reported as ratios to baselines measured in the same run.
package bench
