package tun

import "errors"

// ErrPermission is returned when the process may not create a TUN device or change routes.
var ErrPermission = errors.New("tun: creating a TUN device needs CAP_NET_ADMIN: run as root or as the system service, or grant the capability with: sudo setcap cap_net_admin+ep $(command -v adjacent)")

// ErrUnsupported is returned on platforms without TUN support in this program.
var ErrUnsupported = errors.New("tun: transparent inlets are supported on Linux only")
