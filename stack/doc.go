// Package stack runs a userspace TCP/IP stack (gVisor's netstack) over a TUN device for the
// node's transparent inlets.
//
// Packets come from the device (a local client connecting to a virtual address that a host
// route points at the device) and are read in batches and injected into the stack; what the
// stack sends is written back to the device in batches. A TCP SYN to a registered virtual
// address:port goes to that pair's Handler, which opens the far side (the portal to the
// outlet); only when it succeeds is the SYN answered and the connection handed over as a
// net.Conn, so a target that is down looks refused. Anything else — an unregistered port, a
// stray segment — gets a reset at once; UDP and ICMP are not served. A SYN on a pair the
// stack still holds in TIME_WAIT (its side closed first, and the client reuses the port) ends
// that TIME_WAIT and is served like any other, as gVisor would do only for a listener.
//
// The stack knows nothing of portals or channels: the control plane wires a Handler to the
// data plane's inlet.
package stack
