package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/adjacentnet/adjacent/tun"
)

// Flow is a client's connection attempt to a virtual address.
type Flow struct {
	Client netip.AddrPort
	Target netip.AddrPort // the registered virtual address and port
}

// Session is the far side of a flow that has been reached: Attach joins it to the client's
// connection, Abort gives it up when the client is gone. dataplane.Pending is one.
type Session interface {
	Attach(c net.Conn)
	Abort()
}

// Handler opens the far side of a flow within ctx. An error answers the client with a
// reset, as a refused connection.
type Handler func(ctx context.Context, f Flow) (Session, error)

// Config configures a Stack. Zero values take the documented defaults.
type Config struct {
	Device         tun.Packets   // required
	Logger         *slog.Logger  // default slog.Default()
	ConnectTimeout time.Duration // for a Handler; default 10s
	// MaxPendingPerClient bounds the connection attempts of one client address that wait
	// for their Handler; further SYNs are dropped (the client retries a second later).
	// Default 256: the clients of an inlet mostly share the host's one address, and a pool
	// that opens 100 connections at once found a third of them waiting a second at 64.
	MaxPendingPerClient int
	MaxPending          int // for all clients, default 1024
}

// Stack is a netstack over a TUN device serving registered virtual address:port pairs.
type Stack struct {
	cfg Config
	log *slog.Logger
	ns  *gstack.Stack
	ep  *link
	fwd *tcp.Forwarder
	mtu int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	handlers map[netip.AddrPort]Handler
	pending  map[gstack.TransportEndpointID]struct{}
	clients  map[tcpip.Address]int // pending attempts per client address
	started  bool
	closed   bool

	reopened atomic.Int64 // TIME_WAIT pairs ended by a new SYN (reopen)
}

const nic tcpip.NICID = 1

// New builds the stack; Start runs it.
func New(cfg Config) (*Stack, error) {
	if cfg.Device == nil {
		return nil, errors.New("stack: no device")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxPendingPerClient <= 0 {
		cfg.MaxPendingPerClient = 256
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1024
	}
	mtu, err := cfg.Device.MTU()
	if err != nil {
		return nil, fmt.Errorf("stack: device MTU: %w", err)
	}
	ns := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := tune(ns); err != nil {
		ns.Destroy()
		return nil, err
	}
	ep := &link{Endpoint: channel.New(0, uint32(mtu), ""), dev: cfg.Device}
	// Packets from the device carry checksums the kernel made or the device completed
	// (wireguard-go fills in CHECKSUM_PARTIAL ones), so the stack need not check them again.
	// Outbound checksums are computed: the kernel checks what a TUN device gives it.
	ep.LinkEPCapabilities = gstack.CapabilityRXChecksumOffload
	log := cfg.Logger.With("component", "stack")
	ep.log = func(err error) { log.Debug("tun write", "err", err) }
	s := &Stack{
		cfg: cfg, log: log, ns: ns, ep: ep, mtu: mtu,
		handlers: map[netip.AddrPort]Handler{},
		pending:  map[gstack.TransportEndpointID]struct{}{},
		clients:  map[tcpip.Address]int{},
	}
	if e := ns.CreateNIC(nic, ep); e != nil {
		ns.Destroy()
		return nil, fmt.Errorf("stack: create NIC: %s", e)
	}
	// Any destination address is ours (the host routes only registered ones here), and
	// replies go out from it.
	ns.SetPromiscuousMode(nic, true)
	ns.SetSpoofing(nic, true)
	ns.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nic},
		{Destination: header.IPv6EmptySubnet, NIC: nic},
	})
	// The forwarder's own bound is never reached: handlePacket applies ours first.
	s.fwd = tcp.NewForwarder(ns, receiveWindow, 1<<30, s.forward)
	ns.SetTransportProtocolHandler(tcp.ProtocolNumber, s.handlePacket)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

const (
	receiveWindow = 1 << 20 // initial receive window of accepted connections
)

// timeWaitTimeout is how long a connection the stack closed first stays in TIME_WAIT; the
// tests lengthen it.
var timeWaitTimeout = time.Second

// tune sets the TCP options that make a userspace stack fast on a lossless local link, as
// wireguard-go's netstack and Tailscale do.
func tune(ns *gstack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 1 << 20, Max: 8 << 20}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 1 << 20, Max: 8 << 20}
	// RACK-TLP costs timers per segment; on a link that loses nothing, plain recovery does.
	recovery := tcpip.TCPRecovery(0)
	// A connection the far side closed first waits in TIME_WAIT here, to answer the
	// client's FIN again if our last ACK is lost; a new SYN on the pair ends it (reopen).
	// On a link inside one host old duplicates do not linger, so a second is plenty.
	timeWait := tcpip.TCPTimeWaitTimeoutOption(timeWaitTimeout)
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &moderate, &rx, &tx, &recovery, &timeWait} {
		if e := ns.SetTransportProtocolOption(tcp.ProtocolNumber, opt); e != nil {
			return fmt.Errorf("stack: TCP option %T: %s", opt, e)
		}
	}
	return nil
}

// Register serves connections to target with h.
func (s *Stack) Register(target netip.AddrPort, h Handler) error {
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if _, ok := s.handlers[target]; ok {
		return fmt.Errorf("stack: %s is registered already", target)
	}
	s.handlers[target] = h
	return nil
}

// Unregister stops serving target: new connections to it are reset. Connections already
// handed over are the Handler's.
func (s *Stack) Unregister(target netip.AddrPort) {
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	s.mu.Lock()
	delete(s.handlers, target)
	s.mu.Unlock()
}

// Len is the number of registered targets.
func (s *Stack) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.handlers)
}

// Start runs the goroutine that reads the device; packets out are written by the goroutines
// that send them.
func (s *Stack) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	s.wg.Add(1)
	go s.readDevice()
}

// Close stops the stack: connections it holds are reset and the device reader ends once
// the device is closed too (its Read is what the reader waits in). Close is idempotent.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.handlers = map[netip.AddrPort]Handler{}
	s.mu.Unlock()
	s.cancel()
	s.ns.Close()
	s.ep.close()
	return nil
}

// Wait waits for the device reader and the stack's goroutines, after Close and the device's Close.
func (s *Stack) Wait() {
	s.wg.Wait()
	s.ns.Wait()
}

func addrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip.Unmap(), port)
}

// handlePacket sees every TCP segment that no connection of the stack took: a SYN to a
// registered target within the bounds goes to the forwarder; anything else is refused with a
// reset by the stack (returning false).
func (s *Stack) handlePacket(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	h := header.TCP(pkt.TransportHeader().Slice())
	if len(h) < header.TCPMinimumSize {
		return false
	}
	if f := h.Flags(); !f.Contains(header.TCPFlagSyn) || f.Contains(header.TCPFlagAck) {
		return false
	}
	target := addrPort(id.LocalAddress, id.LocalPort)
	s.mu.Lock()
	if _, ok := s.handlers[target]; !ok {
		s.mu.Unlock()
		return false
	}
	if _, ok := s.pending[id]; ok { // a retransmitted SYN while the far side is dialed
		s.mu.Unlock()
		return true
	}
	if len(s.pending) >= s.cfg.MaxPending || s.clients[id.RemoteAddress] >= s.cfg.MaxPendingPerClient {
		s.mu.Unlock()
		return true // dropped; the client retries
	}
	s.pending[id] = struct{}{}
	s.clients[id.RemoteAddress]++
	s.mu.Unlock()
	if !s.fwd.HandlePacket(id, pkt) { // malformed: not taken
		s.done(id)
		return false
	}
	return true
}

func (s *Stack) done(id gstack.TransportEndpointID) {
	s.mu.Lock()
	delete(s.pending, id)
	if s.clients[id.RemoteAddress]--; s.clients[id.RemoteAddress] <= 0 {
		delete(s.clients, id.RemoteAddress)
	}
	s.mu.Unlock()
}
