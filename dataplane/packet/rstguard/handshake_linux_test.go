//go:build linux && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package rstguard

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/adjacentnet/adjacent/dataplane/packet"
	"github.com/adjacentnet/adjacent/dataplane/packet/rawsock"
	"github.com/adjacentnet/adjacent/dataplane/packet/sockfilter"
	"github.com/adjacentnet/adjacent/internal/netns"
)

// seg builds an IPv4 TCP segment with complete checksums.
func seg(src, dst netip.AddrPort, flags header.TCPFlags, seq, ack uint32, payload []byte) []byte {
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+len(payload))
	b[0], b[2], b[3], b[8], b[9] = 0x45, byte(len(b)>>8), byte(len(b)), 64, 6
	copy(b[12:], src.Addr().AsSlice())
	copy(b[16:], dst.Addr().AsSlice())
	header.TCP(b[20:]).Encode(&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: seq, AckNum: ack,
		DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
	copy(b[40:], payload)
	p, _ := packet.Parse(b)
	p.SetChecksums()
	return b
}

// TestRawFlowToLoopbackTarget plays an outlet's part by hand: a TCP connection whose client
// side is raw packets from a flow port (injected, and captured through the filter) to a
// listener on the namespace's loopback. With the rules the target accepts it, reads the
// client's bytes and its answer is captured; without them the kernel resets the handshake
// and the target never accepts.
func TestRawFlowToLoopbackTarget(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		name := "without rules"
		if guarded {
			name = "with rules"
		}
		t.Run(name, func(t *testing.T) {
			netns.Require(t)
			ns := netns.New(t, "rstguard")
			ns.Run("sysctl", "-qw", "net.ipv4.ip_local_port_range=50000 60000")
			var (
				ln *net.TCPListener
				in *rawsock.Injector
				c  *rawsock.Capturer
				g  *Guard
			)
			err := netns.Do(ns.Name, func() error {
				l, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					return err
				}
				ln = l.(*net.TCPListener)
				f, err := sockfilter.Assemble(sockfilter.Match{Src: ln.Addr().(*net.TCPAddr).AddrPort(), First: first, Last: last})
				if err != nil {
					return err
				}
				if c, err = rawsock.NewCapturer(rawsock.CaptureConfig{Filter: f}); err != nil {
					return err
				}
				if in, err = rawsock.NewInjector(rawsock.InjectorConfig{Mark: mark}); err != nil {
					return err
				}
				if guarded {
					g, err = Install(Config{First: first, Last: last, Mark: mark})
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			defer in.Close()
			defer c.Close()
			if g != nil {
				defer g.Close()
			}
			target := ln.Addr().(*net.TCPAddr).AddrPort()
			client := netip.AddrPortFrom(target.Addr(), 40001)
			inject := func(b []byte) {
				if _, err := in.Write([][]byte{b}, 0); err != nil {
					t.Fatal(err)
				}
			}
			// next returns the next captured segment, or false after a quiet second.
			bufs, infos := [][]byte{make([]byte, 2048)}, make([]rawsock.Info, 1)
			next := func() (packet.Packet, bool) {
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(bufs, infos, 0); errors.Is(err, os.ErrDeadlineExceeded) {
					return packet.Packet{}, false
				} else if err != nil {
					t.Fatal(err)
				}
				p, err := packet.Parse(bytes.Clone(bufs[0][:infos[0].Size]))
				if err != nil {
					t.Fatal(err)
				}
				return p, true
			}

			inject(seg(client, target, header.TCPFlagSyn, 1000, 0, nil))
			synAck, ok := next()
			if !ok || synAck.Flags() != header.TCPFlagSyn|header.TCPFlagAck {
				t.Fatalf("no SYN-ACK captured (captured: %v)", ok)
			}
			s := synAck.TCP().SequenceNumber() + 1
			inject(seg(client, target, header.TCPFlagAck, 1001, s, nil))
			inject(seg(client, target, header.TCPFlagAck|header.TCPFlagPsh, 1001, s, []byte("hello")))

			ln.SetDeadline(time.Now().Add(time.Second))
			conn, err := ln.Accept()
			if !guarded {
				if err == nil {
					conn.Close()
					t.Fatalf("the target accepted a raw flow although the kernel should have reset it; the rules are not what keeps it alive")
				}
				return
			}
			if err != nil {
				t.Fatalf("target Accept: %v", err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			got := make([]byte, 5)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hello" {
				t.Fatalf("target read %q, %v; want hello", got, err)
			}
			if _, err := conn.Write([]byte("world")); err != nil {
				t.Fatal(err)
			}
			for {
				p, ok := next()
				if !ok {
					t.Fatalf("the target's answer was not captured")
				}
				if p.Flags()&header.TCPFlagRst != 0 {
					t.Fatalf("the target reset the flow")
				}
				if string(p.Payload()) == "world" {
					break
				}
			}
			if cs, err := g.Counters(); err != nil || cs.RSTs != 0 || cs.Diverted < 2 {
				t.Errorf("Counters() = %+v, %v; want no RSTs and at least the SYN-ACK and the answer diverted", cs, err)
			}
		})
	}
}
