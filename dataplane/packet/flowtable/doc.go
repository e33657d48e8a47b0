// Package flowtable is the outlet's table of packet-mode flows: which inlet peer's client
// connection (client address and port to the virtual address and port) is carried to which
// target from which local port, in which TCP state, for how long.
//
// A flow opens only for a SYN-only segment from the peer's side; any other segment of an
// unknown flow is refused (the caller drops it). States follow conntrack's (SYN_SENT,
// SYN_RECV, ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE) with a timeout each, and a short
// idle timeout for ESTABLISHED rather than conntrack's five days; the clock is
// Config.Now and expiry happens on Expire and when a lookup or an open meets an expired
// flow, in time proportional to what expires. The table is bounded in total and per peer,
// so a SYN flood from one peer fills its own share and no more. Each flow gets a local port
// from Config.Ports, unique per target address and port, as the kernel's own 4-tuple
// uniqueness wants; the range should lie outside the kernel's ip_local_port_range so local
// sockets never collide with it.
//
// It holds no packets and does not parse them (see packet), and it neither authorizes
// flows nor logs: the caller asks its policy before opening and counts and rate-limits
// refusals (Stats, internal/ratelog). It is safe for concurrent use under one mutex.
package flowtable
