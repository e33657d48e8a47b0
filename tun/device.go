package tun

import (
	"log/slog"
	"net/netip"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Config configures a device. Zero values take the documented defaults.
type Config struct {
	Name   string       // interface name or template; default "adjacent%d" (the kernel picks the number)
	MTU    int          // default DefaultMTU
	Logger *slog.Logger // default slog.Default()
}

// DefaultMTU is the device's MTU. Packets never leave the host, so the largest IPv4/IPv6
// packet a TUN device carries is best: a 64 KiB segment costs one read, one pass through the
// userspace stack and one write instead of forty-five at 1500. 65520 leaves room in the
// 65535-byte IP length for the headers and the virtio header of the offload path.
const DefaultMTU = 65520

// Packets is what the stack needs from a device: batched reads and writes of IP packets
// (wireguard-go's tun.Device contract: offset is headroom before each packet; bufs stay the
// caller's after the call returns).
type Packets interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	MTU() (int, error)
}

var _ Packets = wgtun.Device(nil)

// Device is a TUN device with host routes for virtual addresses. It is safe for concurrent
// use; Read and Write are the underlying wireguard-go device's.
type Device struct {
	wgtun.Device
	name   string
	index  int
	log    *slog.Logger
	routes map[netip.Addr]int // address -> references
	closed bool
}

// Name is the interface's name, e.g. adjacent0.
func (d *Device) Name() string { return d.name }

// Offset is the headroom Read and Write need before each packet: wireguard-go's Linux
// device with offloads writes its virtio header there.
const Offset = 16
