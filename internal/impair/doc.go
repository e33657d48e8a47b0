// Package impair joins two network namespaces through a link that delays, jitters, loses,
// duplicates, reorders and rate-limits packets, per direction: netem for kernels without
// sch_netem. Tests and scripts use it where they would use a veth pair from internal/netns.
//
// Each namespace gets a TUN device (golang.zx2c4.com/wireguard/tun) with the caller's
// addresses; this process reads what one side sends, decides its fate with a seeded random
// generator, and writes it to the other side when it is due. A direction is, in order: loss,
// duplication, a token-bucket rate limit with a bounded drop-tail queue, and a delay line
// (a heap by due time) holding each packet for Delay ± Jitter, or one Delay longer with the
// Reorder probability (netem sends such a packet at once; see Impairment.Reorder). Jitter wider than the spacing of packets reorders them as it does on
// real paths.
//
// TUN rather than AF_PACKET on veth ends: a TUN device carries IP packets, so there is no
// Ethernet, ARP or neighbour discovery to relay, and no middle namespace or host-side
// interfaces; the kernel's segmentation offload is split into MTU-sized packets by
// wireguard-go, where on a veth AF_PACKET would see 64 KiB super-frames and partial
// checksums unless offloads were turned off with ethtool.
//
// [New] and [Link.Close] are for programs such as the impair command; [Join] is the helper
// for integration tests, beside netns.Link: it fails the test on error, seeds the decisions
// from the test's name and closes the link when the test ends.
//
// It moves IPv4 and IPv6 packets only, between exactly two namespaces; it is a test tool,
// not a router, and its delays come from Go timers (tens of microseconds of slack).
package impair
