// Package packet reads and rewrites one IPv4 or IPv6 TCP packet in place, for packet-mode
// (raw) portals: strict bounded parsing, per-flow address and port translation with
// incremental checksum updates (RFC 1624 eqn 3), MSS clamping on SYN and SYN-ACK, and full
// checksum computation and verification.
//
// A packet's TCP checksum is one of two kinds (see [Checksum]): complete, as on the wire, or
// partial, as the kernel hands out locally generated packets whose checksum it has not yet
// computed (virtio-net NEEDS_CSUM, TP_STATUS_CSUMNOTREADY): the field then holds the folded
// pseudo-header sum, not inverted. Translation keeps the kind; [Packet.SetChecksums] turns a
// partial checksum into a complete one before a packet leaves the host, and [Offload] carries
// the kind (and a super-packet's segment size) to a kernel in a virtio-net header.
//
// It makes no system calls and allocates nothing per packet; it neither tracks flows (see
// flowtable) nor reads or writes sockets (see rawsock). IPv4 fragments and IPv6 extension
// headers are refused, not parsed.
//
// A packet-mode outlet is built from this package and its subpackages, each usable alone:
//
//	from the inlet:  Parse -> flowtable.Table.Forward (a SYN opens, others must match)
//	                 -> Rewrite(local:flow port, target) -> ClampMSS on SYN
//	                 -> rawsock.LinkInjector.Write (loopback: the checksum stays partial)
//	                    or SetChecksums if Partial -> rawsock.Injector.Write
//	from the target: rawsock.Capturer.Read (sockfilter.Match{target, flow ports})
//	                 -> Parse -> flowtable.Table.Reply -> Rewrite(virtual, client) with the
//	                 Info's Checksum kind -> ClampMSS on SYN-ACK -> SetPartial if the kernel
//	                 verified it -> back to the inlet, which writes it behind a virtio-net
//	                 header (PutVirtioHdr)
//
// while rstguard keeps the outlet's kernel from answering the flow ports. "local" is the
// outlet's own address toward the target, from a route lookup: the kernel would fill in a
// zero IPv4 source, but the TCP checksum covers it and would then be wrong. The MSS to clamp
// to is the path MTU less 40 (IPv4) or 60 (IPv6) bytes and the tunnel's overhead.
package packet
