// Package randid makes the random names of short-lived workers (channels, portal sessions,
// RPC answers): unguessable, so a remote peer cannot aim at a worker it was not told of, and
// unique on a node.
package randid
