// Package stack runs a userspace TCP/IP stack (gVisor's netstack) over a TUN device: it
// accepts TCP connections to registered virtual address:port pairs and hands each one to the
// data plane as a net.Conn, answering a client's SYN only once the far side is reachable.
// Anything else gets a reset at once.
package stack
