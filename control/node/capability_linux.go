package node

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// capability is a Linux capability the node may need.
type capability struct {
	bit  int
	name string
}

var capNetAdmin = capability{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}

// held reports whether the process holds c in its effective set; true when it cannot tell,
// so that the operation itself reports what went wrong.
func (c capability) held() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[c.bit/32].Effective&(1<<(c.bit%32)) != 0
}

// need refuses what (e.g. "--tun") unless the node holds c, naming the capability, the
// user the node runs as and the ways to grant it.
func (c capability) need(what string) error {
	if c.held() {
		return nil
	}
	return fmt.Errorf("%s needs %s, which this node (uid %d) does not hold: run the node as root, or as the system service "+
		"(adjacent.service grants it), or grant it to the binary with: sudo setcap %s+ep $(command -v adjacent)",
		what, c.name, os.Getuid(), strings.ToLower(c.name))
}

// tunDevice is the clone device every TUN device is made from.
const tunDevice = "/dev/net/tun"

// openTunDevice refuses --tun when the node's user may not open the TUN clone device, which
// holding CAP_NET_ADMIN does not grant: Debian makes it 0666, some systems and containers
// root's only.
func openTunDevice() error {
	if err := unix.Access(tunDevice, unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("--tun: this node (uid %d) may not open %s (%v): give the node's user read and write access to it (most systems make it mode 0666: sudo chmod 0666 %s), or run the node as root", os.Getuid(), tunDevice, err, tunDevice)
	}
	return nil
}
