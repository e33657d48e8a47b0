// Package api is the local API between the CLI and its node: JSON over HTTP on the Unix
// socket in the node's home (owner-only). It holds the request and response types and the
// client; the node implements the server. Anything that can reach the socket can run the
// node, which is why the socket lives in a 0700 home and the node checks the peer's uid.
// Durations are written as Go duration text ("1h0m0s"; see Duration), times as RFC 3339.
package api
