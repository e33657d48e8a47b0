// Package portal carries packet-mode portals (`tcp-inlet create --tun --raw`): the client's
// own TCP segments travel end to end, so the client's kernel and the target's talk TCP to
// each other and the nodes only move, check and translate packets. Nothing terminates TCP
// in a node: no socket, goroutine or buffer per connection, a table entry per flow at
// each end.
//
//	inlet node                                   outlet node
//	Device.readLoop: Frames.Read, a batch        Outlet.HandleMessage (transport goroutine):
//	  Inlet.fromClient: flow table (a SYN          SYN: the outlet's policy (Admit), then
//	  opens, others must match), gather          flowtable.Forward (per-peer cap, a port)
//	  Inlet.flush: one message per batch  --->   Rewrite to local:port -> target, clamp MSS,
//	    (dropped if the link is backlogged)        LinkInjector (loopback) or Injector
//	Inlet.HandleMessage: from the virtual       Engine.answers (one goroutine per target):
//	  address to a live flow only, never a  <---   Capturer.Read (BPF: from the target to
//	  SYN; Device.write                            the flow ports), flowtable.Reply, Rewrite
//	                                               to virtual -> client, one message per peer
//
// Checksums stay as the kernels leave them: each packet travels with its packet.Offload (a
// partial checksum), read and written behind virtio-net headers on the TUN device and, for a
// target on the outlet's host, on loopback; so no node sums a payload. A large segment leaves
// the inlet in the buffer it was read into.
//
// rstguard's nftables rules keep the outlet's kernel from answering the flows' ports with
// RSTs. A segment of no flow is answered with a RST (at either end), as a kernel would, so a
// connection whose flow is gone ends at once rather than by timeout. Each flow is a portal
// session as far as trust goes: a SYN opens it only if the outlet's policy admits the
// sender; Recheck (a changed policy, a revoked or expired credential) and a path that closes
// reset its flows at both ends, with a RST at the sequence number each side expects.
//
// The messages (protocol.go) ride the same end-to-end secure channel as the classic
// portal's, as kinds from dataplane.FirstPacketKind on, so an outlet serves both. Unlike a
// classic session, a packet flow needs neither reliable nor ordered delivery of them: the
// TCP inside recovers. Over the stream transport of today a lost message cannot happen; the
// path's backlog (routing.Backlogged) is what bounds the queue, by dropping.
package portal
