// Package rstguard installs the nftables rules that keep a packet-mode outlet's own kernel
// out of its raw flows: without them the kernel, which has no socket for a flow's local
// port, answers the target's SYN-ACK and every later segment with a RST and kills the
// connection.
//
// The rules live in one table of family inet that the node owns (NFT_TABLE_F_OWNER, Linux
// 5.12): the kernel removes it when the netlink socket that made it closes, so a node that
// dies leaves no rules behind, and no other process can change it. For the ports of the
// node's range they
//   - drop TCP to those ports in the input hook, after the outlet's AF_PACKET capture has
//     seen it (packet sockets tap the device, before netfilter): the kernel's TCP never
//     sees the flows' packets, so it neither looks for a socket nor sends a RST;
//   - exempt TCP from and to those ports from connection tracking (raw priority), so
//     conntrack neither fills with the flows nor marks them invalid; the packets the
//     outlet injects onto loopback skip the output hooks, so those carrying the node's
//     mark are exempted as they come in;
//   - drop, in the output hook, any TCP RST from those ports that does not carry the
//     node's mark (the injector's SO_MARK), a backstop that counts what would have leaked.
//
// Ockam's protocol swap (`ip protocol set 253`) also works but needs a raw socket held open
// for the new protocol, or the kernel sends ICMP protocol-unreachable; the input drop needs
// nothing held open.
//
// The port range must lie outside the kernel's ip_local_port_range and hold no local
// listener: local sockets on those ports stop receiving. It needs CAP_NET_ADMIN and Linux on
// a 64-bit architecture (github.com/google/nftables does not build for 32-bit ones today);
// elsewhere Install returns ErrNotSupported.
package rstguard
