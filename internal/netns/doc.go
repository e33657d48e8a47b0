// Package netns builds network namespaces and veth links: hosts that reach each other only as
// the caller wires them, removed with everything running inside when the caller is done.
//
// [Create], [Connect] and [Namespace.Close] return errors, for programs such as bench/compare
// that must clean up on failure and on interrupt themselves. [Require], [New] and [Link] are
// thin helpers for integration tests: they skip without root, fail the test on error, and
// remove the namespace when the test ends. Either way it needs root and the ip command
// (Debian's iproute2). It is not a general namespace library: no mount or user namespaces.
package netns
