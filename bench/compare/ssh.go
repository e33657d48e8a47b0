package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// The cipher both ssh modes use: what a user would pick for speed on AES-NI machines.
const sshCipher = "aes256-gcm@openssh.com"

// setupSSH is ssh -L: sshd in B on its veth address, one ssh in A forwarding three ports.
func setupSSH(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	k, err := newSSHKeys(ctx, b)
	if err != nil {
		return endpoints{}, err
	}
	if err := k.startSSHD(ctx, b, s, b.direct.b, directB); err != nil {
		return endpoints{}, err
	}
	li, lb, lp := localPorts("ssh")
	_, err = k.startSSH(b, s, b.direct.a, "ssh-L", directB,
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", li, iperfPort),
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lb, blastPort),
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lp, pgPort))
	if err != nil {
		return endpoints{}, err
	}
	return local(b.direct.a, li, lb, lp), nil
}

// setupSSHRelay is the relay shape with ssh: sshd in H; B forwards H's loopback ports back
// to its servers with ssh -R; A forwards local ports to those with ssh -L.
func setupSSHRelay(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	k, err := newSSHKeys(ctx, b)
	if err != nil {
		return endpoints{}, err
	}
	if err := k.startSSHD(ctx, b, s, b.relay.hub, hubIP); err != nil {
		return endpoints{}, err
	}
	const hi, hb, hp = 25201, 27000, 25432 // on H's loopback
	_, err = k.startSSH(b, s, b.relay.b, "ssh-R", hubIP,
		"-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", hi, iperfPort),
		"-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", hb, blastPort),
		"-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", hp, pgPort))
	if err != nil {
		return endpoints{}, err
	}
	li, lb, lp := localPorts("ssh-relay")
	_, err = k.startSSH(b, s, b.relay.a, "ssh-L", hubIP,
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", li, hi),
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lb, hb),
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lp, hp))
	if err != nil {
		return endpoints{}, err
	}
	return local(b.relay.a, li, lb, lp), nil
}

// sshKeys are a temporary host key and client key, the client's authorized by the server.
type sshKeys struct {
	dir, hostKey, clientKey string
}

func newSSHKeys(ctx context.Context, b *bench) (*sshKeys, error) {
	dir, err := b.scratch("ssh")
	if err != nil {
		return nil, err
	}
	k := &sshKeys{dir: dir, hostKey: filepath.Join(dir, "host_ed25519"), clientKey: filepath.Join(dir, "client_ed25519")}
	for _, key := range []string{k.hostKey, k.clientKey} {
		if out, err := runCmd(ctx, b.tools.path["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", "adjacent-bench", "-f", key); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(k.clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// startSSHD runs sshd in ns on addr:22 with the temporary keys, forwarding allowed.
func (k *sshKeys) startSSHD(ctx context.Context, b *bench, s *stage, ns *netns.Namespace, addr string) error {
	// sshd wants its privilege separation directory; Debian's package makes it at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	conf := filepath.Join(k.dir, "sshd_config")
	text := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
Compression no
LogLevel ERROR
`, addr, k.hostKey, filepath.Join(k.dir, "authorized_keys"), filepath.Join(k.dir, "sshd.pid"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	p, err := s.start(ns, "sshd", nil, b.tools.path["sshd"], "-D", "-e", "-f", conf)
	if err != nil {
		return err
	}
	if err := waitListen(ctx, ns, 22, p); err != nil {
		return fmt.Errorf("sshd: %w", err)
	}
	return nil
}

// startSSH runs one ssh client in ns to root@host with the given forwards and no command.
func (k *sshKeys) startSSH(b *bench, s *stage, ns *netns.Namespace, label, host string, forwards ...string) (*proc, error) {
	args := []string{"-F", "/dev/null", "-i", k.clientKey,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "Compression=no",
		"-o", "LogLevel=ERROR", "-c", sshCipher, "-N"}
	args = append(args, forwards...)
	args = append(args, "root@"+host)
	return s.start(ns, label, nil, b.tools.path["ssh"], args...)
}
