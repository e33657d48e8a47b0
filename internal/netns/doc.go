// Package netns builds network namespaces and veth links for integration tests: hosts that
// reach each other only as the test wires them, cleaned up when the test ends, even on
// failure. Tests that use it need root and skip with a reason otherwise.
package netns
