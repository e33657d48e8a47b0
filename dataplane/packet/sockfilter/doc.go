// Package sockfilter builds the classic BPF socket filters that let a packet-mode outlet's
// capture socket see only its flows' packets: TCP from one source address and port (the
// target) to a range of destination ports (the outlet's flow ports), IPv4 or IPv6, and
// nothing else of the host's traffic.
//
// The programs read the IP header at offset 0, as an AF_PACKET SOCK_DGRAM socket (or a raw
// IP socket) presents packets; they refuse IPv4 fragments (a later fragment carries no TCP
// ports) and IPv6 packets with extension headers. They are plain golang.org/x/net/bpf
// programs: tests run them with bpf.NewVM on golden packets, and rawsock attaches them.
// It makes no system calls.
package sockfilter
