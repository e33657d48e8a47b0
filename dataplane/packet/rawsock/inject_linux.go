package rawsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/dataplane/packet"
)

// InjectorConfig configures an Injector. The zero value is valid.
type InjectorConfig struct {
	// Mark is set as SO_MARK on the packets, when not zero, for routing and nftables rules.
	Mark uint32
}

// Injector writes whole IP packets into the host's IP layer. Make one with NewInjector.
type Injector struct {
	v4, v6   *os.File // v6 is nil when the host has no IPv6
	rc4, rc6 syscall.RawConn
	closed   atomic.Bool

	mu    sync.Mutex // one Write at a time: the fields below are reused, so Write allocates nothing
	send  func(fd uintptr) bool
	pkt   []byte
	to    unsafe.Pointer
	tolen uintptr
	to4   unix.RawSockaddrInet4
	to6   unix.RawSockaddrInet6
	serr  unix.Errno
}

// NewInjector opens raw IPv4 and IPv6 sockets with IP_HDRINCL. It needs CAP_NET_RAW.
func NewInjector(cfg InjectorConfig) (*Injector, error) {
	v4, err := rawSocket(unix.AF_INET, cfg.Mark)
	if err != nil {
		return nil, fmt.Errorf("rawsock: open raw IPv4 socket: %w (packet-mode portals need CAP_NET_RAW)", err)
	}
	v6, err := rawSocket(unix.AF_INET6, cfg.Mark)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		v6 = nil
	} else if err != nil {
		v4.Close()
		return nil, fmt.Errorf("rawsock: open raw IPv6 socket: %w", err)
	}
	in := &Injector{v4: v4, v6: v6}
	in.to4.Family, in.to6.Family = unix.AF_INET, unix.AF_INET6
	in.send = func(fd uintptr) bool {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(in.pkt))), uintptr(len(in.pkt)), 0, uintptr(in.to), in.tolen)
		if e == unix.EAGAIN {
			return false
		}
		in.serr = e
		return true
	}
	if in.rc4, err = v4.SyscallConn(); err == nil && v6 != nil {
		in.rc6, err = v6.SyscallConn()
	}
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("rawsock: %w", err)
	}
	return in, nil
}

func rawSocket(family int, mark uint32) (*os.File, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, err
	}
	// IPPROTO_RAW implies IP_HDRINCL for IPv4; IPv6 asks for it.
	if family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1)
	}
	if err == nil && mark != 0 {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "rawsock"), nil
}

// Write writes bufs[i][offset:], each one IPv4 or IPv6 packet with complete checksums
// (the kernel fills in the IPv4 header checksum, and the IPv4 source and ID when they are
// zero), to the destination in its header, and returns how many it wrote. It stops at the
// first packet that fails; a packet larger than its route's MTU fails with EMSGSIZE. The
// caller keeps the buffers.
func (in *Injector) Write(bufs [][]byte, offset int) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, b := range bufs {
		b = b[offset:]
		if err := in.write(b); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

func (in *Injector) write(b []byte) error {
	var rc syscall.RawConn
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		rc = in.rc4
		in.to4.Addr = [4]byte(b[16:20])
		in.to, in.tolen = unsafe.Pointer(&in.to4), unix.SizeofSockaddrInet4
	case len(b) >= 40 && b[0]>>4 == 6:
		if in.v6 == nil {
			return fmt.Errorf("rawsock: write: %w (no IPv6 on this host)", unix.EAFNOSUPPORT)
		}
		rc = in.rc6
		in.to6.Addr = [16]byte(b[24:40])
		in.to, in.tolen = unsafe.Pointer(&in.to6), unix.SizeofSockaddrInet6
	default:
		return errors.New("rawsock: write: not an IPv4 or IPv6 packet")
	}
	in.pkt = b
	err := rc.Write(in.send)
	in.pkt, in.to = nil, nil
	return written(&in.closed, err, in.serr)
}

// written is the outcome of a write: the poller's error (a closed socket), or the system
// call's.
func written(closed *atomic.Bool, err error, errno unix.Errno) error {
	if err != nil {
		return closedErr("write", closed, err)
	}
	if errno != 0 {
		return fmt.Errorf("rawsock: write: %w", errno)
	}
	return nil
}

// Close closes the sockets. It is idempotent; writes after it fail with net.ErrClosed.
func (in *Injector) Close() error {
	in.closed.Store(true)
	in.v4.Close()
	if in.v6 != nil {
		in.v6.Close()
	}
	return nil
}

// closedErr turns the os package's closed-file errors into net.ErrClosed, the Bind contract.
func closedErr(op string, closed *atomic.Bool, err error) error {
	if closed.Load() || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("rawsock: %s: %w", op, net.ErrClosed)
	}
	return fmt.Errorf("rawsock: %s: %w", op, err)
}

// LinkInjector writes IP packets onto a loopback interface through an AF_PACKET socket with
// PACKET_VNET_HDR, each behind its virtio-net header and an Ethernet header of zeros: a
// partial checksum stays partial, and a super-packet is cut into segments only if the
// interface needs it, so the kernel computes and verifies no checksum a local receiver
// would skip. Packets skip the host's routing and its output hooks. Loopback only: a wire
// would need the next hop's link-layer address. Make one with NewLinkInjector.
//
// IPv4 drops a packet with a local source that arrives without a route attached (a martian
// source), and one to 127/8 unless route_localnet allows it; packets that loopback carries
// always have their route, these do not. The injector therefore turns on accept_local and
// route_localnet on its interface, and leaves them on: on loopback alone they open nothing
// to other hosts (only a local process with CAP_NET_RAW can put a packet there), and
// putting them back would break another node's injector on the same host. Where it cannot
// (a read-only /proc/sys, as under the system service's ProtectKernelTunables) and they are
// off, IPv4 says why not (IPv4); IPv6 has no such check.
type LinkInjector struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	v4 error // why it cannot carry IPv4, or nil

	mu   sync.Mutex // one Write at a time: the fields below are reused
	send func(fd uintptr) bool
	hdr  [packet.VirtioHdrLen]byte
	eth  [ethHdrLen]byte // destination and source zeros, then the EtherType
	iov  [3]unix.Iovec
	to   unix.RawSockaddrLinklayer
	msg  unix.Msghdr
	serr unix.Errno
}

const ethHdrLen = 14

// NewLinkInjector opens the socket on loopback interface ifindex, marking its packets with
// mark (SO_MARK) when not zero. It needs CAP_NET_RAW.
func NewLinkInjector(ifindex int, mark uint32) (*LinkInjector, error) {
	// SOCK_RAW: the kernel takes virtio-net headers on raw packet sockets only.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rawsock: open packet socket: %w (packet-mode portals need CAP_NET_RAW)", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1)
	if err == nil && mark != 0 {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rawsock: packet socket: %w", err)
	}
	ifc, err := net.InterfaceByIndex(ifindex)
	if err == nil && ifc.Flags&net.FlagLoopback == 0 {
		err = fmt.Errorf("%s is not a loopback interface", ifc.Name)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rawsock: %w", err)
	}
	in := &LinkInjector{f: os.NewFile(uintptr(fd), "rawsock-link"), v4: acceptLocal("/proc/sys/net/ipv4/conf/" + ifc.Name)}
	in.to = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(ifindex), Halen: 6}
	in.msg.Name = (*byte)(unsafe.Pointer(&in.to))
	in.msg.Namelen = unix.SizeofSockaddrLinklayer
	in.send = func(fd uintptr) bool {
		in.msg.Iov = &in.iov[0]
		in.msg.SetIovlen(len(in.iov))
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&in.msg)), 0)
		if e == unix.EAGAIN {
			return false
		}
		in.serr = e
		return true
	}
	if in.rc, err = in.f.SyscallConn(); err != nil {
		in.Close()
		return nil, fmt.Errorf("rawsock: %w", err)
	}
	return in, nil
}

// acceptLocal turns on accept_local and route_localnet in dir, an interface's
// /proc/sys/net/ipv4/conf directory, and returns why not if it cannot and they are off.
func acceptLocal(dir string) error {
	for _, key := range []string{"accept_local", "route_localnet"} {
		path := dir + "/" + key
		err := os.WriteFile(path, []byte("1\n"), 0)
		if err == nil {
			continue
		}
		if on(path) {
			continue // on already, though this process may not change it
		}
		return fmt.Errorf("IPv4 onto loopback needs %s on, and setting it failed: %w (turn it on with sysctl -w net.ipv4.conf.%s.%s=1)",
			key, err, filepath.Base(dir), key)
	}
	return nil
}

// on reports whether the setting at path reads 1.
func on(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 8) // a setting is a short line
	n, _ := f.Read(b)
	return strings.TrimSpace(string(b[:n])) == "1"
}

// IPv4 returns nil if the injector carries IPv4 packets, else why not (see LinkInjector).
func (in *LinkInjector) IPv4() error { return in.v4 }

// Write writes packet p with offload o.
func (in *LinkInjector) Write(p *packet.Packet, o packet.Offload) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	packet.PutVirtioHdr(in.hdr[:], p, o, ethHdrLen)
	var proto uint16
	switch p.Version() {
	case 4:
		proto = unix.ETH_P_IP
	case 6:
		proto = unix.ETH_P_IPV6
	default:
		return errors.New("rawsock: write: not an IPv4 or IPv6 packet")
	}
	in.to.Protocol = htons(proto)
	in.eth[12], in.eth[13] = byte(proto>>8), byte(proto)
	b := p.Bytes()
	for i, s := range [][]byte{in.hdr[:], in.eth[:], b} {
		in.iov[i] = unix.Iovec{Base: &s[0]}
		in.iov[i].SetLen(len(s))
	}
	in.serr = 0
	err := in.rc.Write(in.send)
	in.iov = [3]unix.Iovec{}
	return written(&in.closed, err, in.serr)
}

// Close closes the socket. It is idempotent; writes after it fail with net.ErrClosed.
func (in *LinkInjector) Close() error {
	in.closed.Store(true)
	in.f.Close()
	return nil
}
