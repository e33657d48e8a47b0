// Package tcp is the TCP transport of the router: it listens and dials, and carries routed
// messages as length-prefixed frames.
//
// Each side first sends a 4-byte preamble ("adj" and a protocol version); a foreign or
// unsupported preamble closes the connection and is logged. Then every frame is a 4-byte
// big-endian length and one encoded routing.Message; a zero length is a heartbeat. Lengths are
// checked before anything is allocated: a small cap until a secure channel has completed a
// handshake over the connection (Link.Authenticated), a larger one after.
//
// Accepted connections that have not authenticated yet are admitted under two caps, one per
// listener and one per source address (so one host cannot take them all), and closed if no
// handshake completes over them within PreAuthTimeout. Refusals are logged as one line per
// interval with their count, never one line per connection.
//
// Every connection is a worker at a local address (tcp-N) that only local workers may use; a
// message that arrives on it gets that address pushed onto its return route and the
// connection's flow in its metadata, so replies find their way back and flow control knows
// where it came from. Writes are batched: senders queue frames and never block; the sender
// that finds no one writing writes the queue with writev itself, and the connection's writer
// goroutine takes over only while the socket is full (internal/sockio's Queue).
//
// The transport does not reconnect by itself: a dead connection ends its flows, and the layer
// that owns a long-lived route (the node's hub session) reconnects through Connect, which
// spaces attempts to a failing address with jittered exponential backoff.
package tcp
