package node

import (
	"fmt"
	"net/netip"

	"github.com/adjacentnet/adjacent/dataplane/packet/portal"
	"github.com/adjacentnet/adjacent/tun"
)

// packetDevice is the TUN device of the node's packet-mode inlets and the packet reader on
// it; it exists while at least one does. It is not the transparent inlets' device: no
// netstack reads it. Guarded by portals.mu.
type packetDevice struct {
	dev *tun.Device
	pd  *portal.Device
}

// startRaw serves the packet-mode inlet in on the packet device, creating the device with
// the first one; portals.mu is held.
func (ps *portals) startRaw(in *inlet) (err error) {
	ap, err := netip.ParseAddrPort(in.rec.Listen)
	if err != nil {
		return fmt.Errorf("stored address %q: %w", in.rec.Listen, err)
	}
	if t := ps.tun; t != nil && t.dev.HasRoute(ap.Addr()) {
		return fmt.Errorf("%s is an address of a transparent inlet without --raw; one address has one mode: delete that inlet, or choose another address", ap.Addr())
	}
	d := ps.raw
	if d == nil {
		dev, err := ps.createDevice("--tun --raw", "adjraw%d")
		if err != nil {
			return err
		}
		frames, err := dev.Frames()
		if err != nil {
			dev.Close()
			return fmt.Errorf("tcp-inlet create --tun --raw: %w", err)
		}
		d = &packetDevice{dev: dev, pd: portal.NewDevice(frames, ps.cfg.Logger)}
		d.pd.Start()
		ps.raw = d
		defer func() {
			if err != nil && d.pd.Len() == 0 {
				ps.closeRaw()
			}
		}()
	}
	pin, err := portal.NewInlet(portal.InletConfig{
		Router: ps.cfg.Router, Logger: ps.cfg.Logger.With("inlet", in.rec.Name),
		Path: in.path, Allow: in.path.allowed, Virtual: ap, Device: d.pd,
	})
	if err != nil {
		return fmt.Errorf("%w; delete the inlet that serves it first", err)
	}
	if err := ps.mapAddress(d.dev, in, ap); err != nil {
		pin.Close()
		return err
	}
	in.dp = pin
	ps.cfg.Logger.Info("packet-mode inlet ready", "from", in.rec.Name, "address", ap.String(), "device", d.dev.Name(), "route", in.rec.Route)
	return nil
}

// stopRaw undoes startRaw for in; with keepHosts the hosts entry stays. The device goes with
// the last packet-mode inlet. portals.mu is held.
func (ps *portals) stopRaw(in *inlet, keepHosts bool) {
	d := ps.raw
	if d == nil {
		return
	}
	if ap, err := netip.ParseAddrPort(in.rec.Listen); err == nil && d.dev.HasRoute(ap.Addr()) {
		ps.unmapAddress(d.dev, in, ap, keepHosts)
	}
	in.dp.Close() // before the device goes: its flows are reset through it
	if d.pd.Len() == 0 {
		ps.closeRaw()
	}
}

// closeRaw removes the packet device; portals.mu is held.
func (ps *portals) closeRaw() {
	d := ps.raw
	if d == nil {
		return
	}
	ps.raw = nil
	d.pd.Close()
	d.dev.Close()
	ps.cfg.Logger.Info("tun device removed", "device", d.dev.Name())
}
