package portal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/dataplane/packet/flowtable"
)

// The flow ports are those above the kernel's ephemeral range; a range too small, or with a
// listening socket in it, is refused with what to change.
func TestFlowPorts(t *testing.T) {
	proc := func(rng, tcp string) string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "sys/net/ipv4"), 0o755)
		os.MkdirAll(filepath.Join(d, "net"), 0o755)
		os.WriteFile(filepath.Join(d, "sys/net/ipv4/ip_local_port_range"), []byte(rng), 0o644)
		os.WriteFile(filepath.Join(d, "net/tcp"), []byte("  sl  local_address rem_address   st\n"+tcp), 0o644)
		return d
	}
	const listen8080 = "   0: 0100007F:1F90 00000000:0000 0A\n"
	const listen62000 = "   1: 00000000:F230 00000000:0000 0A\n"
	const connected62000 = "   2: 0100007F:F230 0100007F:1F90 01\n"
	r, err := flowPorts(proc("32768\t60999\n", listen8080+connected62000))
	if err != nil || r != (flowtable.PortRange{First: 61000, Last: 65535}) {
		t.Errorf("flowPorts(32768 60999) = %v, %v; want 61000-65535", r, err)
	}
	if _, err := flowPorts(proc("32768\t65000\n", "")); err == nil || !strings.Contains(err.Error(), "ip_local_port_range") {
		t.Errorf("flowPorts(32768 65000) = %v; want refused, naming the sysctl", err)
	}
	if _, err := flowPorts(proc("32768\t60999\n", listen62000)); err == nil || !strings.Contains(err.Error(), "port 62000") {
		t.Errorf("flowPorts with a listener on 62000 = %v; want refused, naming the port", err)
	}
}
