// Package tcp is the TCP transport of the router (a routing.Transport): it listens and
// dials, and carries routed messages as length-prefixed frames, reliably and in order, up to
// Config.MaxFrame (its routing.Guarantees).
//
// Each side first sends a 4-byte preamble ("adj" and a protocol version); a foreign or
// unsupported preamble closes the connection and is logged. Then every frame is a 4-byte
// big-endian length and one encoded routing.Message; a zero length is a heartbeat. Lengths are
// checked before anything is allocated, as unsigned numbers on every word size: a small cap
// until a secure channel over the connection has authenticated a peer the layers above vouch
// for (Link.Authenticated; at a hub, a member, not a stranger come to enroll), a larger one
// after.
//
// Accepted connections that have not authenticated yet are admitted under two caps, one per
// listener and one per source address (so one host cannot take them all), and closed if no
// handshake completes over them within PreAuthTimeout. When the listener's cap is reached, a
// source holding fewer than another still gets in, in place of the oldest connection of the
// source holding the most, so a few flooding sources cannot lock the others out. Refusals are logged as one line per
// interval with their count, never one line per connection.
//
// Every connection is a worker at a local address (tcp-N) that only local workers may use; a
// message that arrives on it gets that address pushed onto its return route and the
// connection's flow in its metadata, so replies find their way back and flow control knows
// where it came from. Writes are batched: senders queue frames and never block; the sender
// that finds no one writing writes the queue with writev itself, and the connection's writer
// goroutine takes over only while the socket is full (internal/sockio's Queue).
//
// Dials in progress are capped (MaxPendingDials); one more fails at once.
//
// The transport does not reconnect by itself: a dead connection ends its flows, and the layer
// that owns a long-lived route (the node's hub session) reconnects through Connect, which
// spaces attempts to a failing address with jittered exponential backoff.
package tcp
