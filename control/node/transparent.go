package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/hosts"
	"github.com/adjacentnet/adjacent/control/state"
	"github.com/adjacentnet/adjacent/dataplane"
	"github.com/adjacentnet/adjacent/stack"
	"github.com/adjacentnet/adjacent/tun"
)

// transparent is the node's TUN device and the netstack on it, shared by all transparent
// inlets; it exists while at least one does. Guarded by portals.mu.
type transparent struct {
	dev *tun.Device
	st  *stack.Stack
}

// defaultHostsFile is where names of transparent inlets go unless --hosts-file says otherwise.
const defaultHostsFile = "/etc/hosts"

// transparentRecord completes a create request for a transparent inlet: the virtual address
// (the HOST given, or one allocated for a name) and the hosts file.
func (n *Node) transparentRecord(ctx context.Context, req api.CreateInlet) (state.Inlet, error) {
	host, port, err := net.SplitHostPort(req.From)
	if err != nil || host == "" {
		return state.Inlet{}, fmt.Errorf("--from %q: with --tun give HOST:PORT, the address clients connect to, e.g. db.bank.internal:5432 or 10.20.0.5:5432", req.From)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return state.Inlet{}, fmt.Errorf("--from %q: port must be a number from 1 to 65535", req.From)
	}
	rec := state.Inlet{Tun: true, Name: net.JoinHostPort(host, port)}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() {
			return state.Inlet{}, fmt.Errorf("--from %q: a transparent inlet needs a unicast address that is not loopback", req.From)
		}
		rec.Listen = netip.AddrPortFrom(a.Unmap(), uint16(mustPort(port))).String()
		if req.HostsFile != "" {
			return state.Inlet{}, errors.New("--hosts-file: HOST is an address, there is no name to write")
		}
		return rec, nil
	}
	if !hosts.ValidName(host) {
		return state.Inlet{}, fmt.Errorf("--from %q: %q is neither an IP address nor a host name", req.From, host)
	}
	rec.Host = host
	rec.HostsFile = req.HostsFile
	if rec.HostsFile == "" {
		rec.HostsFile = defaultHostsFile
	}
	if !filepath.IsAbs(rec.HostsFile) {
		return state.Inlet{}, fmt.Errorf("--hosts-file %q: give an absolute path", rec.HostsFile)
	}
	rng := hosts.DefaultRange
	if req.AddressRange != "" {
		if rng, err = netip.ParsePrefix(req.AddressRange); err != nil {
			return state.Inlet{}, fmt.Errorf("--address-range %q: want a prefix such as 100.127.0.0/16 or fd61:646a::/64", req.AddressRange)
		}
	}
	addr, err := n.addressFor(ctx, rec.Host, rec.HostsFile, rng)
	if err != nil {
		return state.Inlet{}, err
	}
	rec.Listen = netip.AddrPortFrom(addr, uint16(mustPort(port))).String()
	return rec, nil
}

func mustPort(s string) uint64 {
	p, _ := strconv.ParseUint(s, 10, 16)
	return p
}

// addressFor is the virtual address of name: the one another inlet of the node already gave
// it, else the first in rng that no inlet of the node and no entry of the hosts file holds.
func (n *Node) addressFor(ctx context.Context, name, file string, rng netip.Prefix) (netip.Addr, error) {
	stored, err := n.state.Inlets(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	used := map[netip.Addr]bool{}
	for _, in := range stored {
		ap, err := netip.ParseAddrPort(in.Listen)
		if err != nil || !in.Tun {
			continue
		}
		if in.Host == name {
			return ap.Addr(), nil
		}
		used[ap.Addr()] = true
	}
	if data, err := os.ReadFile(file); err == nil {
		_, entries, _, _ := hosts.Parse(data)
		for _, e := range entries {
			if e.Name == name && rng.Contains(e.Addr) && !used[e.Addr] {
				return e.Addr, nil // ours from an earlier run
			}
			used[e.Addr] = true // another node's on this machine
		}
	}
	return hosts.Allocate(rng, func(a netip.Addr) bool { return used[a] })
}

// startTransparent serves in on the TUN device, creating the device with the first
// transparent inlet; portals.mu is held.
func (ps *portals) startTransparent(in *inlet) (err error) {
	ap, err := netip.ParseAddrPort(in.rec.Listen)
	if err != nil {
		return fmt.Errorf("stored address %q: %w", in.rec.Listen, err)
	}
	if r := ps.raw; r != nil && r.dev.HasRoute(ap.Addr()) {
		return fmt.Errorf("%s is an address of a packet-mode inlet (--raw); one address has one mode: delete that inlet, or choose another address", ap.Addr())
	}
	t := ps.tun
	if t == nil {
		dev, err := ps.createDevice("--tun", "")
		if err != nil {
			return err
		}
		st, err := stack.New(stack.Config{Device: dev, Logger: ps.cfg.Logger})
		if err != nil {
			dev.Close()
			return err
		}
		st.Start()
		t = &transparent{dev: dev, st: st}
		ps.tun = t
		defer func() {
			if err != nil && st.Len() == 0 {
				ps.closeTransparent()
			}
		}()
	}
	dp := in.dp.(*dataplane.Inlet)
	if err := t.st.Register(ap, func(ctx context.Context, f stack.Flow) (stack.Session, error) {
		p, err := dp.Dial(ctx)
		if err != nil {
			return nil, err
		}
		return p, nil
	}); err != nil {
		return fmt.Errorf("%s is served by another transparent inlet; delete it first", ap)
	}
	if err := ps.mapAddress(t.dev, in, ap); err != nil {
		t.st.Unregister(ap)
		return err
	}
	ps.cfg.Logger.Info("transparent inlet ready", "from", in.rec.Name, "address", ap.String(), "device", t.dev.Name(), "route", in.rec.Route)
	return nil
}

// createDevice makes a TUN device (named after template, "" for the default) for the
// inlets of what (the flags that need it), after checking that the node may.
func (ps *portals) createDevice(what, template string) (*tun.Device, error) {
	if err := capNetAdmin.need(what); err != nil {
		return nil, err
	}
	if err := openTunDevice(); err != nil {
		return nil, err
	}
	dev, err := tun.Create(tun.Config{Name: template, Logger: ps.cfg.Logger})
	if errors.Is(err, tun.ErrPermission) {
		return nil, fmt.Errorf("%s: the TUN device was refused although the node holds CAP_NET_ADMIN; a sandbox may deny /dev/net/tun (systemd: DeviceAllow=/dev/net/tun rw): %w", what, err)
	}
	return dev, err
}

// mapAddress points ap's address at dev and, for a name, writes it into the hosts file;
// on success in.dev is dev's name.
func (ps *portals) mapAddress(dev *tun.Device, in *inlet, ap netip.AddrPort) error {
	if err := dev.AddRoute(ap.Addr()); err != nil {
		return err
	}
	if in.rec.Host != "" {
		if err := hosts.Set(in.rec.HostsFile, in.rec.Host, ap.Addr()); err != nil {
			dev.RemoveRoute(ap.Addr())
			return fmt.Errorf("%w; give a hosts file the node may write with --hosts-file, or an IP address as HOST", err)
		}
	}
	in.dev = dev.Name()
	return nil
}

// unmapAddress undoes mapAddress; with keepHosts the hosts entry stays (another inlet uses
// the name).
func (ps *portals) unmapAddress(dev *tun.Device, in *inlet, ap netip.AddrPort, keepHosts bool) {
	if err := dev.RemoveRoute(ap.Addr()); err != nil {
		ps.cfg.Logger.Warn("route not removed", "address", ap.Addr().String(), "err", err)
	}
	if in.rec.Host != "" && !keepHosts {
		if err := hosts.Remove(in.rec.HostsFile, in.rec.Host); err != nil {
			ps.cfg.Logger.Warn("hosts entry not removed", "name", in.rec.Host, "err", err)
		}
	}
}

// stopTransparent undoes startTransparent for in; with keepHosts the hosts entry stays
// (another inlet uses the name). The device goes with the last transparent inlet.
// portals.mu is held.
func (ps *portals) stopTransparent(in *inlet, keepHosts bool) {
	t := ps.tun
	if t == nil {
		return
	}
	ap, err := netip.ParseAddrPort(in.rec.Listen)
	if err != nil {
		return
	}
	t.st.Unregister(ap)
	ps.unmapAddress(t.dev, in, ap, keepHosts)
	if t.st.Len() == 0 {
		ps.closeTransparent()
	}
}

// closeTransparent removes the device and its stack; portals.mu is held.
func (ps *portals) closeTransparent() {
	t := ps.tun
	if t == nil {
		return
	}
	ps.tun = nil
	t.st.Close()
	t.dev.Close()
	t.st.Wait()
	ps.cfg.Logger.Info("tun device removed", "device", t.dev.Name())
}

// nameShared reports whether another transparent inlet than in maps the same name in the same
// hosts file; portals.mu is held.
func (ps *portals) nameShared(in *inlet) bool {
	for _, o := range ps.inlets {
		if o != in && o.rec.Tun && o.rec.Host == in.rec.Host && o.rec.HostsFile == in.rec.HostsFile {
			return true
		}
	}
	return false
}

var _ stack.Session = (*dataplane.Pending)(nil)
