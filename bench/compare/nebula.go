package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// nebulaPort is the UDP port each Nebula host listens on, on its veth address.
const nebulaPort = 4242

// nebulaHost is what one host's Nebula configuration says: its certificate, its tun device
// and overlay address, where it listens, and the one peer it knows statically (no
// lighthouse: two hosts at fixed addresses need none).
type nebulaHost struct {
	name                      string // the certificate's name
	ca, cert, key             string // files written by nebula-cert
	dev                       string // tun device, unique per run
	overlay                   string // this host's Nebula address
	listen                    string // the veth address it listens on, port nebulaPort
	peerOverlay, peerUnderlay string
	inboundTCP                []int // ports the firewall lets in; replies are tracked
}

// nebulaConfig is h's configuration file. The tun MTU is Nebula's default (1300); the
// cipher is Nebula's default, named so the table's "AES-256-GCM" stays true; ICMP is let in
// both ways for whoever looks at the tunnel by hand.
func nebulaConfig(h nebulaHost) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `pki:
  ca: %q
  cert: %q
  key: %q
static_host_map:
  %q: [%q]
lighthouse:
  am_lighthouse: false
  hosts: []
listen:
  host: %q
  port: %d
punchy:
  punch: false
relay:
  am_relay: false
  use_relays: false
cipher: aes
tun:
  disabled: false
  dev: %q
logging:
  level: info
  format: text
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: icmp
      host: any
`, h.ca, h.cert, h.key, h.peerOverlay, fmt.Sprintf("%s:%d", h.peerUnderlay, nebulaPort),
		h.listen, nebulaPort, h.dev)
	for _, p := range h.inboundTCP {
		fmt.Fprintf(&sb, "    - port: %d\n      proto: tcp\n      host: any\n", p)
	}
	return sb.String()
}

// nebulaPKI makes a CA and a certificate for each host with nebula-cert, in dir, valid
// for a day, and fills in each host's ca, cert and key.
func nebulaPKI(ctx context.Context, nebulaCert, dir string, hosts ...*nebulaHost) error {
	ca, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if out, err := runCmd(ctx, nebulaCert, "ca", "-name", "adjacent-bench", "-duration", "24h",
		"-out-crt", ca, "-out-key", caKey); err != nil {
		return fmt.Errorf("nebula-cert ca: %v: %s", err, firstLine(out))
	}
	for _, h := range hosts {
		h.ca, h.cert, h.key = ca, filepath.Join(dir, h.name+".crt"), filepath.Join(dir, h.name+".key")
		if out, err := runCmd(ctx, nebulaCert, "sign", "-ca-crt", ca, "-ca-key", caKey, "-name", h.name,
			"-ip", h.overlay+"/24", "-out-crt", h.cert, "-out-key", h.key); err != nil {
			return fmt.Errorf("nebula-cert sign %s: %v: %s", h.name, err, firstLine(out))
		}
	}
	return nil
}

// setupNebula is Nebula from Debian's package: a CA and two host certificates made with
// nebula-cert, one nebula in A and one in B, each knowing the other's veth address from its
// static_host_map; A reaches B's servers on B's overlay address.
func setupNebula(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("nebula")
	if err != nil {
		return endpoints{}, err
	}
	s.onClose(func() { os.RemoveAll(dir) }) // last, once both have stopped
	var r [3]byte
	rand.Read(r[:])
	suffix := hex.EncodeToString(r[:])
	type side struct {
		ns *netns.Namespace
		nebulaHost
	}
	a := &side{b.direct.a, nebulaHost{name: "a", dev: "adjbna" + suffix, overlay: nebulaA, listen: directA,
		peerOverlay: nebulaB, peerUnderlay: directB}}
	bb := &side{b.direct.b, nebulaHost{name: "b", dev: "adjbnb" + suffix, overlay: nebulaB, listen: directB,
		peerOverlay: nebulaA, peerUnderlay: directA, inboundTCP: []int{openIperfPort, openBlastPort, pgPort}}}
	if err := nebulaPKI(ctx, b.tools.path["nebula-cert"], dir, &a.nebulaHost, &bb.nebulaHost); err != nil {
		return endpoints{}, err
	}
	if err := b.startServers(ctx, s, "open", b.direct.b, "0.0.0.0", openIperfPort, openBlastPort); err != nil {
		return endpoints{}, err
	}
	var procs []*proc
	for _, sd := range []*side{bb, a} {
		conf := filepath.Join(dir, sd.name+".yml")
		if err := os.WriteFile(conf, []byte(nebulaConfig(sd.nebulaHost)), 0o600); err != nil {
			return endpoints{}, err
		}
		// Nebula removes its device when it stops; if it was killed, the device goes now,
		// before the next mode uses the namespace.
		ns, dev := sd.ns, sd.dev
		s.onClose(func() { ns.Exec(context.Background(), "ip", "link", "del", "dev", dev) })
		p, err := s.start(sd.ns, "nebula-"+sd.name, nil, b.tools.path["nebula"], "-config", conf)
		if err != nil {
			return endpoints{}, err
		}
		procs = append(procs, p)
	}
	ep := at(b.direct.a, nebulaB)
	if err := b.waitTunnel(ctx, ep, procs...); err != nil {
		return endpoints{}, fmt.Errorf("nebula: %w", err)
	}
	return ep, nil
}

// waitTunnel waits until one round trip through ep's blast endpoint succeeds (the overlay
// is up: devices made, handshake done, firewall open), or one of procs exits.
func (b *bench) waitTunnel(ctx context.Context, ep endpoints, procs ...*proc) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, p := range procs {
			if err := p.exited(); err != nil {
				return err
			}
		}
		out, err := b.blast(ctx, ep.ns, 2*time.Second, "rr", "-to", ep.blast, "-count", "1", "-size", "64")
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("no round trip to %s through the tunnel after 15s: %s", ep.blast, firstLine(out))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
