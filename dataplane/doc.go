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
// Every refusal reaches the inlet as a reason: the outlet's (policy, capacity, an unreachable
// target), its node's router's (no such outlet: routing.Refusal) and the path's (the control
// plane wraps them in ErrRefused). The inlet counts them and keeps the last (LastRefusal).
// Inlet.Check asks the outlet, without a dial, whether a connect would be accepted (the
// msgCheck portal message), so an inlet can be checked when it is created.
//
// A session needs a path that delivers every message, once and in order (pathNeeds in
// protocol.go, checked against routing.Link.Guarantees): both ends refuse any other.
//
// The path of a frame, client to server (the way back swaps the roles; the long version,
// with the hub and the connect step, is docs/portal-path.md):
//
//	goroutine                    stage                                         buffer
//	inlet session, readLoop      wait for the socket (sockio.Reader), read     NewBuffer: the frame's, from here
//	  same                       portal type in headroom; Router.Send          owned by the message
//	  same                       securechannel: seal e2e, then hub channel     sealed in place, twice
//	  same                       routing/tcp: frame header; sockio.Queue       the queue's; released once written
//	  (socket full: the conn's writer goroutine, Queue.FlushWait)
//	hub: conn readLoop           open hub layer, relay, seal, queue to bank    one buffer, in place
//	bank: conn readLoop          open both layers; session.HandleMessage       TakeBody: the session's queue
//	  same                       Queue.Flush to the server (TryWriter)         released once written
//	  (socket full: the session's writeLoop, Queue.FlushWait)
package dataplane
