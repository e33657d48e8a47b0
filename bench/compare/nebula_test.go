package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/ golden files")

// benchB is B's side as setupNebula configures it, with fixed paths.
func benchB() nebulaHost {
	return nebulaHost{name: "b", ca: "/tmp/x/ca.crt", cert: "/tmp/x/b.crt", key: "/tmp/x/b.key",
		dev: "adjbnb0a1b2c", overlay: nebulaB, listen: directB, peerOverlay: nebulaA, peerUnderlay: directA,
		inboundTCP: []int{openIperfPort, openBlastPort}}
}

func TestNebulaConfigGolden(t *testing.T) {
	got := nebulaConfig(benchB())
	golden := filepath.Join("testdata", "nebula-b.yml")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run TestNebulaConfigGolden -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("nebulaConfig(B) =\n%s\nwant (%s)\n%s", got, golden, want)
	}
}

// The fields the mode depends on, so a golden file rewritten in haste still has them.
func TestNebulaConfigFields(t *testing.T) {
	conf := nebulaConfig(benchB())
	for _, want := range []string{
		`"10.204.0.1": ["10.201.0.1:4242"]`, // A, statically: no lighthouse
		"am_lighthouse: false\n  hosts: []",
		`host: "10.201.0.2"` + "\n  port: 4242", // UDP on B's veth address
		`dev: "adjbnb0a1b2c"`,
		"cipher: aes",
		"- port: 5202\n      proto: tcp\n      host: any", // iperf3
		"- port: 7002\n      proto: tcp\n      host: any", // blast
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nebulaConfig(B) lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "mtu") {
		t.Errorf("nebulaConfig(B) sets an MTU; the comparison uses Nebula's default:\n%s", conf)
	}
	// A lets in no TCP port of its own: replies are tracked by Nebula's firewall.
	a := benchB()
	a.inboundTCP = nil
	if conf := nebulaConfig(a); strings.Contains(conf, "proto: tcp") {
		t.Errorf("nebulaConfig(A) lets TCP in:\n%s", conf)
	}
}

// TestNebulaConfigAccepted has Nebula itself check both configurations with certificates
// from nebula-cert (nebula -test opens no device and no socket).
func TestNebulaConfigAccepted(t *testing.T) {
	nebula, err1 := exec.LookPath("nebula")
	nebulaCert, err2 := exec.LookPath("nebula-cert")
	if err1 != nil || err2 != nil {
		t.Skip("nebula and nebula-cert not installed (Debian package nebula)")
	}
	dir := t.TempDir()
	a := nebulaHost{name: "a", dev: "adjbnatest", overlay: nebulaA, listen: directA, peerOverlay: nebulaB, peerUnderlay: directB}
	b := benchB()
	if err := nebulaPKI(context.Background(), nebulaCert, dir, &a, &b); err != nil {
		t.Fatal(err)
	}
	for _, h := range []nebulaHost{a, b} {
		conf := filepath.Join(dir, h.name+".yml")
		if err := os.WriteFile(conf, []byte(nebulaConfig(h)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nebula, "-test", "-config", conf).CombinedOutput(); err != nil {
			t.Errorf("nebula -test -config %s: %v\n%s\n%s", h.name, err, out, nebulaConfig(h))
		}
	}
}
