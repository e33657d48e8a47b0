package portal

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/adjacentnet/adjacent/dataplane/packet/flowtable"
)

// minPorts is the fewest flow ports an engine runs with: the most flows open at once
// toward one target.
const minPorts = 1024

// flowPorts returns the ports above the kernel's ephemeral range (ip_local_port_range, read
// from procDir/sys/net/ipv4): no local socket takes one by itself, so rstguard may keep the
// kernel out of all of them. It refuses a range of fewer than minPorts ports, and one where
// a socket listens (procDir/net/tcp and tcp6), which the rules would cut off.
func flowPorts(procDir string) (flowtable.PortRange, error) {
	b, err := os.ReadFile(procDir + "/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return flowtable.PortRange{}, fmt.Errorf("read the kernel's ephemeral port range: %w", err)
	}
	f := strings.Fields(string(b))
	last, err := strconv.ParseUint(f[len(f)-1], 10, 16)
	if len(f) != 2 || err != nil {
		return flowtable.PortRange{}, fmt.Errorf("the kernel's ephemeral port range %q: not two ports", strings.TrimSpace(string(b)))
	}
	r := flowtable.PortRange{First: uint16(last) + 1, Last: 65535}
	if last >= 65535 || int(r.Last-r.First)+1 < minPorts {
		return flowtable.PortRange{}, fmt.Errorf("the kernel's ephemeral ports end at %d, which leaves fewer than %d ports above for packet flows: lower the end (sysctl net.ipv4.ip_local_port_range, e.g. \"32768 60999\")", last, minPorts)
	}
	for _, file := range []string{"/net/tcp", "/net/tcp6"} {
		if port, ok := listening(procDir+file, r); ok {
			return flowtable.PortRange{}, fmt.Errorf("a socket listens on port %d, in the packet flows' range %d-%d above the kernel's ephemeral ports: move it, or raise the end of net.ipv4.ip_local_port_range past it", port, r.First, r.Last)
		}
	}
	return r, nil
}

// listening returns a port of r on which a socket in the /proc/net/tcp-style file listens.
func listening(file string, r flowtable.PortRange) (uint16, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text()) // sl local_address rem_address st ...
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if ok && err == nil && uint16(p) >= r.First && uint16(p) <= r.Last {
			return uint16(p), true
		}
	}
	return 0, false
}
