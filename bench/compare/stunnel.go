package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Ports stunnel's server side accepts TLS on, on B's veth address.
const (
	stunnelIperfPort = 8443
	stunnelBlastPort = 8444
	stunnelPgPort    = 8445
)

// setupStunnel is stunnel on both sides, TLS 1.3 only: a client in A accepting plain TCP on
// loopback, a server in B with a temporary self-signed certificate, which the client verifies.
func setupStunnel(ctx context.Context, b *bench, s *stage) (endpoints, error) {
	dir, err := b.scratch("stunnel")
	if err != nil {
		return endpoints{}, err
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := selfSigned(cert, key, directB); err != nil {
		return endpoints{}, fmt.Errorf("certificate: %w", err)
	}
	li, lb, lp := localPorts("stunnel")
	const global = "foreground = yes\nsyslog = no\ndebug = err\npid =\n"
	server, client := global, global
	for _, svc := range []struct {
		name                 string
		local, tls, upstream int // A's loopback port, B's TLS port, B's server
	}{{"iperf", li, stunnelIperfPort, iperfPort}, {"blast", lb, stunnelBlastPort, blastPort}, {"pg", lp, stunnelPgPort, pgPort}} {
		server += fmt.Sprintf(`
[%s]
accept = %s:%d
connect = 127.0.0.1:%d
cert = %s
key = %s
sslVersionMin = TLSv1.3
`, svc.name, directB, svc.tls, svc.upstream, cert, key)
		client += fmt.Sprintf(`
[%s]
client = yes
accept = 127.0.0.1:%d
connect = %s:%d
verifyPeer = yes
CAfile = %s
sslVersionMin = TLSv1.3
`, svc.name, svc.local, directB, svc.tls, cert)
	}
	serverConf, clientConf := filepath.Join(dir, "server.conf"), filepath.Join(dir, "client.conf")
	if err := os.WriteFile(serverConf, []byte(server), 0o600); err != nil {
		return endpoints{}, err
	}
	if err := os.WriteFile(clientConf, []byte(client), 0o600); err != nil {
		return endpoints{}, err
	}
	p, err := s.start(b.direct.b, "stunnel-server", nil, b.tools.path["stunnel"], serverConf)
	if err != nil {
		return endpoints{}, err
	}
	if err := waitListen(ctx, b.direct.b, stunnelBlastPort, p); err != nil {
		return endpoints{}, fmt.Errorf("stunnel server: %w", err)
	}
	p, err = s.start(b.direct.a, "stunnel-client", nil, b.tools.path["stunnel"], clientConf)
	if err != nil {
		return endpoints{}, err
	}
	if err := waitListen(ctx, b.direct.a, lb, p); err != nil {
		return endpoints{}, fmt.Errorf("stunnel client: %w", err)
	}
	return local(b.direct.a, li, lb, lp), nil
}

// selfSigned writes a P-256 certificate for ip, valid for a day, and its key, as PEM.
func selfSigned(certPath, keyPath, ip string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "adjacent-bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"adjacent-bench"},
		IPAddresses:           []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
