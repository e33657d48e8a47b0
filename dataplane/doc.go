// Package dataplane carries TCP connections through portals: an inlet accepts a connection
// (on a local port, or from the transparent stack as a net.Conn), an outlet dials the
// target, and a portal session between them moves bytes as routed messages over a secure
// channel, with half-close, reset and a per-session credit window.
//
// It is the performance-critical path: pooled buffers with headroom, headers precomputed per
// session and written in place, no allocation, goroutine or channel hop per frame. It knows
// nothing of identities or policies beyond asking a small interface whether a peer may open
// a session, and whether the peer of a live session may still hold it: each session knows
// its peer node, and Recheck, which the control plane runs when a policy or a peer's
// credential changes (never per frame), resets at both ends the sessions that no longer pass.
// An outlet caps the sessions each peer identity holds (MaxSessionsPerPeer).
//
// A session needs a path that delivers every message, once and in order (pathNeeds in
// protocol.go, checked against routing.Link.Guarantees): both ends refuse any other.
package dataplane
