// Package rawsock moves whole IP packets between a packet-mode outlet and its host's kernel:
// an Injector writes IPv4 and IPv6 TCP packets through raw IP sockets with IP_HDRINCL (the
// kernel routes them and passes them through netfilter, and fills the IPv4 header
// checksum; the TCP checksum must be complete), a LinkInjector writes them onto a loopback
// interface through an AF_PACKET socket behind virtio-net headers (a partial checksum stays
// partial: the local receiver trusts it), and a Capturer reads, in batches, the packets a
// classic BPF filter (see sockfilter) keeps from an AF_PACKET SOCK_DGRAM socket with an
// 8 MiB buffer (a target's 64 KiB super-packets overflow the default one).
//
// The Capturer's socket is opened with protocol 0, so it receives nothing until the filter
// is attached and it is bound: no packet of the host slips in before the filter. It ignores
// the host's outgoing packets (PACKET_IGNORE_OUTGOING; on loopback each packet is then seen
// once, as it comes in) and reports per packet whether the kernel left its TCP checksum
// partial (TP_STATUS_CSUMNOTREADY), which packet.Checksum names, or verified it
// (TP_STATUS_CSUM_VALID).
//
// Neither allocates per packet: Write and Read reuse their system-call arguments, one call
// at a time. Writes are one system call per packet (no sendmmsg yet); an Injector's are bound
// by the route's MTU and never segmented. Only Linux (4.20 or later, for PACKET_IGNORE_OUTGOING) is supported; on other
// systems the constructors return ErrNotSupported. Both need CAP_NET_RAW.
package rawsock
