// Package routing moves messages between workers, inside a node and across transports.
//
// A message carries an onward route (where it goes), a return route (how a reply comes back)
// and a payload; node-local metadata (which flow it arrived on, the authenticated peer)
// travels beside it in Local and never on the wire. Each hop pops its own address from the
// onward route and pushes one onto the return route, so a reply simply follows the return
// route (Ockam's routing protocol).
//
// Workers register under local addresses in a Router. Delivery is a synchronous call on the
// sender's goroutine: a worker's HandleMessage must not block, and takes ownership of the
// message. Remote input is untrusted: a message that arrived over a transport or out of a
// secure channel reaches only the workers explicitly opened to that flow (flow control), and
// everything else is dropped and counted. A remote message for a worker that does not exist
// or is not open to it gets a refusal (refusal.go): "no service" from the reserved address
// RefusalName, back the way it came, rate-limited, never in answer to a refusal; the sender
// learns within one round trip what it would otherwise learn by timing out.
//
// The rule that keeps remote input remote: a message that did not start on this node never
// becomes local, whatever forwards it, and never leaves through a transport. A Relay forwards
// under a flow of its own, which is open only at its owner's channel and at the channels its
// clients' messages came out of, so it carries messages between the two and reaches nothing
// else; it keeps the sender's Peer and pushes its own address onto the return route, so what
// it carried can always be told from what the node itself sent. The one way a remote message
// turns into a local one is an answer (Message.Reply, Router.Reply, Message.ReplyRoute, used
// by every worker that answers or keeps talking to a remote sender, a secure-channel
// responder included): the worker sends as itself, but only back the way the message came,
// since the first hop of the return route must be the link the message arrived over, which
// pushed its own address there.
//
// Messages are built for the zero-copy data plane: payloads live in pooled Buffers with
// headroom, so route headers, counters and frame lengths are written in front of the payload
// in place, and tags behind it in the tailroom.
//
// Transports live in subpackages (routing/tcp; routing/transporttest, in memory, for tests)
// and plug in through the contract of transport.go: Transport (dial, listen, send, stats,
// close) and the Guarantees each link states (reliable? ordered? largest message?), which
// the layers above check instead of assuming TCP. The router keeps one transport per address
// Type; the route text form parses the address of every registered Kind. A Destination
// (route, flow, link) is where a worker sends and how it knows the answers.
// This package knows nothing of encryption, identities or portals.
package routing
