package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

const wgListenPort = 51820

// setupWireguard is wireguard-go: a wg interface in A and in B, peered over the veth and
// configured with wg and ip; A reaches B's servers on B's tunnel address.
func setupWireguard(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("wireguard")
	if err != nil {
		return endpoints{}, err
	}
	// The control socket is /var/run/wireguard/NAME.sock, shared by all namespaces: the
	// names must not collide with anyone's.
	var r [3]byte
	rand.Read(r[:])
	type side struct {
		ns                 *netns.Namespace
		ifname, tunnelIP   string
		underlay, peerAddr string
		key                *ecdh.PrivateKey
	}
	a := &side{ns: b.direct.a, ifname: "adjbwa" + hex.EncodeToString(r[:]), tunnelIP: wgA, underlay: directA}
	bb := &side{ns: b.direct.b, ifname: "adjbwb" + hex.EncodeToString(r[:]), tunnelIP: wgB, underlay: directB}
	for _, sd := range []*side{a, bb} {
		if sd.key, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return endpoints{}, err
		}
	}
	if err := b.startServers(ctx, s, "open", b.direct.b, "0.0.0.0", openIperfPort, openBlastPort); err != nil {
		return endpoints{}, err
	}
	for _, pair := range [][2]*side{{a, bb}, {bb, a}} {
		me, peer := pair[0], pair[1]
		p, err := s.start(me.ns, "wireguard-"+me.ifname, []string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"},
			b.tools.path["wireguard-go"], "-f", me.ifname)
		if err != nil {
			return endpoints{}, err
		}
		sock := filepath.Join("/var/run/wireguard", me.ifname+".sock")
		s.onClose(func() { os.Remove(sock) })
		if err := waitFile(ctx, sock, p); err != nil {
			return endpoints{}, fmt.Errorf("wireguard-go: %w", err)
		}
		keyFile := filepath.Join(dir, me.ifname+".key")
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(me.key.Bytes())+"\n"), 0o600); err != nil {
			return endpoints{}, err
		}
		steps := [][]string{
			{b.tools.path["wg"], "set", me.ifname, "listen-port", fmt.Sprint(wgListenPort), "private-key", keyFile,
				"peer", base64.StdEncoding.EncodeToString(peer.key.PublicKey().Bytes()),
				"allowed-ips", peer.tunnelIP + "/32", "endpoint", fmt.Sprintf("%s:%d", peer.underlay, wgListenPort)},
			{"ip", "addr", "add", me.tunnelIP + "/24", "dev", me.ifname},
			{"ip", "link", "set", me.ifname, "up"},
		}
		for _, st := range steps {
			if _, err := me.ns.Exec(ctx, st...); err != nil {
				return endpoints{}, err
			}
		}
	}
	return at(b.direct.a, wgB), nil
}

// waitFile waits until path exists, or p exits.
func waitFile(ctx context.Context, path string, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %s after 10s", path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
