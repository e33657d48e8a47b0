// Package tun creates and owns the TUN device of a node's transparent inlets
// (golang.zx2c4.com/wireguard/tun) and points host routes for their virtual addresses at it
// with netlink, removing them when an address is released or the device is closed.
//
// Packets come from the host's TCP/IP stack (a client connecting to a virtual address) and
// are read in batches by the stack package; what the stack sends back is written to the
// device and delivered to the client. A packet-mode inlet's device is read and written as
// Frames instead: each packet behind the virtio-net header the kernel gives it, with no
// checksum computed and TSO off. The package does not parse packets.
//
// The device needs CAP_NET_ADMIN; without it Create returns ErrPermission with the way to
// grant it.
package tun
