package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

var mu sync.Mutex // guards every Device's routes and closed; route changes are rare

// Create makes a TUN device and brings it up. It has no addresses: AddRoute points a
// virtual address at it.
//
// wireguard-go turns on IFF_VNET_HDR with TSO/checksum offloads. Reads of the kernel's
// segments then arrive as GSO super-packets that it splits, and writes are coalesced (GRO)
// before they reach the kernel. At the large MTU the kernel's segments are already ~64 KiB,
// so splitting and coalescing rarely happen; the offload path's remaining cost is one copy
// per read (into its own buffer, then into ours), which the larger packets amortize.
func Create(cfg Config) (*Device, error) {
	if cfg.Name == "" {
		cfg.Name = "adjacent%d"
	}
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dev, err := wgtun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
			return nil, ErrPermission
		}
		return nil, fmt.Errorf("tun: create device: %w", err)
	}
	name, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("tun: device name: %w", err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("tun: find %s: %w", name, err)
	}
	// The kernel drops what it sends to the device beyond its queue, 500 packets by default:
	// ten thousand clients closing at once overflowed it (23,500 drops measured; none at
	// 16384), and every drop costs a retransmission. The queue holds pointers, so a long one
	// costs little.
	if err := netlink.LinkSetTxQLen(link, txQueueLen); err != nil {
		dev.Close()
		return nil, permission(fmt.Errorf("tun: set the queue length of %s: %w", name, err))
	}
	if err := netlink.LinkSetUp(link); err != nil {
		dev.Close()
		return nil, permission(fmt.Errorf("tun: bring %s up: %w", name, err))
	}
	cfg.Logger.Info("tun device up", "device", name, "mtu", cfg.MTU)
	return &Device{Device: dev, name: name, index: link.Attrs().Index, log: cfg.Logger, routes: map[netip.Addr]int{}}, nil
}

// txQueueLen is the device's transmit queue, in packets.
const txQueueLen = 16384

func permission(err error) error {
	if errors.Is(err, unix.EPERM) {
		return ErrPermission
	}
	return err
}

func hostRoute(index int, a netip.Addr) *netlink.Route {
	bits := 32
	if a.Is6() {
		bits = 128
	}
	return &netlink.Route{
		LinkIndex: index,
		Scope:     netlink.SCOPE_LINK,
		Dst:       &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)},
	}
}

// AddRoute points a host route (/32 or /128) for a at the device. Routes are counted:
// several inlets on one address share the route, which goes with the last RemoveRoute.
func (d *Device) AddRoute(a netip.Addr) error {
	a = a.Unmap()
	mu.Lock()
	defer mu.Unlock()
	if d.closed {
		return net.ErrClosed
	}
	if d.routes[a] > 0 {
		d.routes[a]++
		return nil
	}
	if err := netlink.RouteReplace(hostRoute(d.index, a)); err != nil {
		return permission(fmt.Errorf("tun: route %s to %s: %w", a, d.name, err))
	}
	d.routes[a] = 1
	return nil
}

// RemoveRoute drops one reference to a's route, deleting the route with the last.
func (d *Device) RemoveRoute(a netip.Addr) error {
	a = a.Unmap()
	mu.Lock()
	defer mu.Unlock()
	if d.routes[a] == 0 {
		return nil
	}
	d.routes[a]--
	if d.routes[a] > 0 {
		return nil
	}
	delete(d.routes, a)
	if err := netlink.RouteDel(hostRoute(d.index, a)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("tun: remove route %s: %w", a, err)
	}
	return nil
}

// Close removes the routes and the device; readers get an error. It is idempotent.
func (d *Device) Close() error {
	mu.Lock()
	if d.closed {
		mu.Unlock()
		return nil
	}
	d.closed = true
	for a := range d.routes {
		netlink.RouteDel(hostRoute(d.index, a))
		delete(d.routes, a)
	}
	mu.Unlock()
	return d.Device.Close()
}

// HasRoute reports whether a's host route points at the device.
func (d *Device) HasRoute(a netip.Addr) bool {
	mu.Lock()
	defer mu.Unlock()
	return d.routes[a.Unmap()] > 0
}
