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
	li, lb := localPorts("stunnel")
	const global = "foreground = yes\nsyslog = no\ndebug = err\npid =\n"
	server := global + fmt.Sprintf(`
[iperf]
accept = %[1]s:%[2]d
connect = 127.0.0.1:%[3]d
cert = %[6]s
key = %[7]s
sslVersionMin = TLSv1.3

[blast]
accept = %[1]s:%[4]d
connect = 127.0.0.1:%[5]d
cert = %[6]s
key = %[7]s
sslVersionMin = TLSv1.3
`, directB, stunnelIperfPort, iperfPort, stunnelBlastPort, blastPort, cert, key)
	client := global + fmt.Sprintf(`
[iperf]
client = yes
accept = 127.0.0.1:%[1]d
connect = %[3]s:%[4]d
verifyPeer = yes
CAfile = %[6]s
sslVersionMin = TLSv1.3

[blast]
client = yes
accept = 127.0.0.1:%[2]d
connect = %[3]s:%[5]d
verifyPeer = yes
CAfile = %[6]s
sslVersionMin = TLSv1.3
`, li, lb, directB, stunnelIperfPort, stunnelBlastPort, cert)
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
	return local(b.direct.a, li, lb), nil
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
