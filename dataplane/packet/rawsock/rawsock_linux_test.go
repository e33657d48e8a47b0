package rawsock

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/sockfilter"
	"github.com/adjacentnet/adjacent/internal/netns"
)

// syn builds a SYN from src to dst with sequence number 1000 and an MSS option.
func syn(src, dst netip.AddrPort) []byte {
	ihl := header.IPv4MinimumSize
	if src.Addr().Is6() {
		ihl = header.IPv6MinimumSize
	}
	b := make([]byte, ihl+header.TCPMinimumSize+4)
	if src.Addr().Is6() {
		b[0] = 0x60
		b[5] = byte(len(b) - ihl)
		b[6], b[7] = 6, 64
		copy(b[8:], src.Addr().AsSlice())
		copy(b[24:], dst.Addr().AsSlice())
	} else {
		b[0], b[3], b[8], b[9] = 0x45, byte(len(b)), 64, 6
		copy(b[12:], src.Addr().AsSlice())
		copy(b[16:], dst.Addr().AsSlice())
	}
	header.TCP(b[ihl:]).Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 1000,
		DataOffset: header.TCPMinimumSize + 4, Flags: header.TCPFlagSyn, WindowSize: 65535})
	copy(b[ihl+header.TCPMinimumSize:], []byte{2, 4, 0x05, 0xb4})
	p, err := packet.Parse(b)
	if err != nil {
		panic(err)
	}
	p.SetChecksums()
	return b
}

// listenAndCapture listens on host and captures what the listener sends to ports 40000 to
// 40999, batch packets a read (0: the default).
func listenAndCapture(host string, batch int) (net.Listener, *Capturer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, nil, err
	}
	target := ln.Addr().(*net.TCPAddr).AddrPort()
	filter, err := sockfilter.Assemble(sockfilter.Match{Src: target, First: 40000, Last: 40999})
	if err == nil {
		var c *Capturer
		if c, err = NewCapturer(CaptureConfig{Filter: filter, Batch: batch}); err == nil {
			return ln, c, nil
		}
	}
	ln.Close()
	return nil, nil, err
}

// TestInjectSYNCaptureSYNACK injects a SYN to a listening socket on a namespace's loopback
// and captures the kernel's SYN-ACK through the filter, and nothing of another connection
// running beside it, for IPv4 and IPv6.
func TestInjectSYNCaptureSYNACK(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t, "rawsock")
	// Ordinary connections take ports away from the flow range the filter matches.
	ns.Run("sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 60000")
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			var ln net.Listener
			var in *Injector
			var c *Capturer
			var other net.Conn
			err := netns.Do(ns.Name, func() error {
				var err error
				if ln, c, err = listenAndCapture(host, 8); err != nil {
					return err
				}
				if in, err = NewInjector(InjectorConfig{}); err != nil {
					return err
				}
				other, err = net.Dial("tcp", ln.Addr().String())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			defer in.Close()
			defer c.Close()
			defer other.Close()
			go func() { // the other connection: accepted, echoed
				s, err := ln.Accept()
				if err == nil {
					io.Copy(s, s)
					s.Close()
				}
			}()
			if _, err := other.Write([]byte("beside the raw flow")); err != nil {
				t.Fatal(err)
			}
			io.ReadFull(other, make([]byte, 19))

			target := ln.Addr().(*net.TCPAddr).AddrPort()
			from := netip.AddrPortFrom(target.Addr(), 40001)
			if n, err := in.Write([][]byte{syn(from, target)}, 0); n != 1 || err != nil {
				t.Fatalf("Write(SYN %v -> %v) = %d, %v", from, target, n, err)
			}

			const headroom = 16
			bufs := [][]byte{make([]byte, 2048), make([]byte, 2048), make([]byte, 2048)}
			infos := make([]Info, len(bufs))
			var got []packet.Packet
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			for {
				n, err := c.Read(bufs, infos, headroom)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if infos[i].Truncated(bufs[i], headroom) {
						t.Fatalf("packet %d of %d bytes cut", i, infos[i].Size)
					}
					p, err := packet.Parse(bufs[i][headroom : headroom+infos[i].Size])
					if err != nil {
						t.Fatalf("captured %x: %v", bufs[i][headroom:headroom+infos[i].Size], err)
					}
					if infos[i].Checksum == packet.Partial {
						if p.TCP().Checksum() != p.PseudoHeaderSum() {
							t.Errorf("partial checksum %#04x, want the pseudo-header sum %#04x", p.TCP().Checksum(), p.PseudoHeaderSum())
						}
					} else if err := p.Verify(); err != nil {
						t.Errorf("captured packet with complete checksum: %v", err)
					}
					t.Logf("captured %v -> %v flags %v, checksum %v", p.Src(), p.Dst(), p.Flags(), infos[i].Checksum)
					got = append(got, p)
					bufs[i] = make([]byte, 2048) // keep p's bytes
				}
			}
			if len(got) == 0 {
				t.Fatalf("captured nothing, want the SYN-ACK to %v", from)
			}
			for i, p := range got {
				if p.Src() != target || p.Dst() != from {
					t.Errorf("captured packet %d: %v -> %v, want only %v -> %v", i, p.Src(), p.Dst(), target, from)
				}
			}
			if p := got[0]; p.Flags() != header.TCPFlagSyn|header.TCPFlagAck || p.TCP().AckNumber() != 1001 {
				t.Errorf("first captured: flags %v ack %d, want SYN-ACK acknowledging 1001", p.Flags(), p.TCP().AckNumber())
			}

			// The per-packet path allocates nothing: a reply-shaped packet injected to the flow
			// port comes back through the filter.
			reply := syn(target, from)
			reply[len(reply)-24+13] = byte(header.TCPFlagAck) // TCP flags (SYN-only options kept)
			rp, _ := packet.Parse(reply)
			rp.SetChecksums()
			c.SetReadDeadline(time.Time{})
			allocs := testing.AllocsPerRun(20, func() {
				if _, err := in.Write([][]byte{reply}, 0); err != nil {
					panic(err)
				}
				if _, err := c.Read(bufs, infos, headroom); err != nil {
					panic(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Write and Read of one packet: %v allocations, want 0", allocs)
			}

			c.Close()
			if _, err := c.Read(bufs, infos, 0); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after Close = %v, want net.ErrClosed", err)
			}
		})
	}
}

// captured reads what c captures until it has been quiet for quiet.
func captured(t *testing.T, c *Capturer, quiet time.Duration) ([]packet.Packet, []Info) {
	t.Helper()
	var got []packet.Packet
	var infos []Info
	bufs, in := [][]byte{make([]byte, 2048)}, make([]Info, 1)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(bufs, in, 0)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, infos
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			p, err := packet.Parse(bufs[0][:in[0].Size])
			if err != nil {
				t.Fatal(err)
			}
			got, infos = append(got, p), append(infos, in[0])
			bufs[0] = make([]byte, 2048)
		}
	}
}

// TestLinkInjectorKeepsPartialChecksums injects SYNs onto a namespace's loopback through an
// AF_PACKET socket: one whose checksum field holds the pseudo-header sum is answered when
// its virtio-net header says the checksum is partial (the kernel trusts it, as it trusts its
// own), and dropped when sent as complete (the kernel verifies it), for IPv4 and IPv6.
func TestLinkInjectorKeepsPartialChecksums(t *testing.T) {
	netns.Require(t)
	ns := netns.New(t, "rawlink")
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			var ln net.Listener
			var li *LinkInjector
			var c *Capturer
			err := netns.Do(ns.Name, func() error {
				var err error
				if ln, c, err = listenAndCapture(host, 0); err != nil {
					return err
				}
				lo, err := net.InterfaceByName("lo")
				if err != nil {
					return err
				}
				li, err = NewLinkInjector(lo.Index, 0)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			defer li.Close()
			defer c.Close()
			target := ln.Addr().(*net.TCPAddr).AddrPort()
			for _, tc := range []struct {
				port    uint16
				offload packet.Offload
				answer  bool
			}{
				{40002, packet.Offload{}, false},
				{40003, packet.Offload{Checksum: packet.Partial}, true},
			} {
				from := netip.AddrPortFrom(target.Addr(), tc.port)
				p, _ := packet.Parse(syn(from, target))
				p.SetPartial()
				if err := li.Write(&p, tc.offload); err != nil {
					t.Fatal(err)
				}
				got, infos := captured(t, c, 300*time.Millisecond)
				if !tc.answer {
					if len(got) != 0 {
						t.Fatalf("a SYN sent as complete with a partial checksum was answered: %v", got[0].Flags())
					}
					continue
				}
				if len(got) == 0 || got[0].Dst() != from || got[0].Flags() != header.TCPFlagSyn|header.TCPFlagAck {
					t.Fatalf("a SYN sent as partial got %d packets back, want a SYN-ACK to %v", len(got), from)
				}
				if infos[0].Checksum != packet.Partial || got[0].TCP().Checksum() != got[0].PseudoHeaderSum() {
					t.Errorf("the kernel's SYN-ACK on loopback: checksum %v %#04x, want partial, the pseudo-header sum", infos[0].Checksum, got[0].TCP().Checksum())
				}
			}
			p, _ := packet.Parse(syn(netip.AddrPortFrom(target.Addr(), 40004), target))
			if n := testing.AllocsPerRun(20, func() { li.Write(&p, packet.Offload{}) }); n != 0 {
				t.Errorf("Write of one packet: %v allocations, want 0", n)
			}

		})
	}
}

func TestCapturerNeedsFilter(t *testing.T) {
	if _, err := NewCapturer(CaptureConfig{}); err == nil {
		t.Errorf("NewCapturer without a filter: nil error")
	}
}

// acceptLocal turns the settings on where it may, and where it may not (a read-only
// /proc/sys, as under the system service) says why and what to run instead.
func TestAcceptLocal(t *testing.T) {
	dir := t.TempDir()
	for _, key := range []string{"accept_local", "route_localnet"} {
		os.WriteFile(dir+"/"+key, []byte("0\n"), 0o644)
	}
	if err := acceptLocal(dir); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"accept_local", "route_localnet"} {
		if b, _ := os.ReadFile(dir + "/" + key); string(b) != "1\n" {
			t.Errorf("%s = %q, want 1", key, b)
		}
	}
	stuck := t.TempDir()
	for _, key := range []string{"accept_local", "route_localnet"} {
		os.Symlink("/dev/full", stuck+"/"+key) // writes fail (ENOSPC), reads give zeros: off
	}
	if err := acceptLocal(stuck); err == nil || !strings.Contains(err.Error(), "sysctl -w net.ipv4.conf.") {
		t.Errorf("acceptLocal with the settings off and unwritable = %v, want why and the sysctl to run", err)
	}
}
