// Package rpc is request and response over routed messages, for the control plane: a caller
// sends a payload along a route with a one-off reply address and waits for the answer; a
// server is a worker that runs a handler per request on its own goroutine (handlers may touch
// a database) with bounded concurrency (optionally per caller, and with a pool of its own for
// guests such as non-members: Limits), and answers along the request's return route, which
// must start at the link the request came over (routing.Message.Reply).
// Requests and answers are JSON, at most MaxMessage bytes; errors travel as one-line texts.
// A router's refusal (no such service on the way) ends the wait at once as an error.
//
// It is not for the data plane: portals move bytes with their own frames.
package rpc
