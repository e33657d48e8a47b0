//go:build linux && (amd64 || arm64 || ppc64 || ppc64le || s390x || riscv64 || loong64 || mips64 || mips64le)

package rstguard

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Guard is the installed table. Close removes it.
type Guard struct {
	conn  *nftables.Conn
	table *nftables.Table
	input *nftables.Chain
	out   *nftables.Chain

	closeOnce sync.Once
	closeErr  error
}

// Install adds the table and its rules in one batch, owned (TableFlagOwner, NFT_TABLE_F_OWNER)
// by a lasting netlink socket the Guard keeps open until Close or the process's end.
func Install(cfg Config) (*Guard, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("rstguard: open netlink: %w", err)
	}
	g := &Guard{conn: conn}
	g.table = conn.AddTable(&nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet, Flags: nftables.TableFlagOwner})
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: name, Table: g.table, Hooknum: hook, Priority: prio, Type: nftables.ChainTypeFilter})
	}
	pre := chain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	outRaw := chain("output-raw", nftables.ChainHookOutput, nftables.ChainPriorityRaw)
	g.input = chain("input", nftables.ChainHookInput, nftables.ChainPriorityRef(-150))
	g.out = chain("output", nftables.ChainHookOutput, nftables.ChainPriorityFilter)

	const sport, dport = 0, 2
	conn.AddRule(&nftables.Rule{Table: g.table, Chain: pre, Exprs: tcpPorts(dport, cfg, &expr.Notrack{})})
	conn.AddRule(&nftables.Rule{Table: g.table, Chain: outRaw, Exprs: tcpPorts(sport, cfg, &expr.Notrack{})})
	if cfg.Mark != 0 { // what the outlet injects onto loopback skips the output hooks
		conn.AddRule(&nftables.Rule{Table: g.table, Chain: pre, Exprs: append([]expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, cfg.Mark)},
		}, tcpPorts(sport, cfg, &expr.Notrack{})...)})
	}
	conn.AddRule(&nftables.Rule{Table: g.table, Chain: g.input, Exprs: tcpPorts(dport, cfg,
		&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})})
	rst := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, cfg.Mark)},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	if cfg.Mark == 0 {
		rst = append(rst[:3], rst[5:]...)
	}
	conn.AddRule(&nftables.Rule{Table: g.table, Chain: g.out, Exprs: tcpPorts(sport, cfg, rst...)})
	if err := conn.Flush(); err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("rstguard: install table %s for ports %d-%d: %w (needs CAP_NET_ADMIN and nftables, Linux 5.12 or later)", cfg.Table, cfg.First, cfg.Last, err)
	}
	return g, nil
}

// tcpPorts returns "meta l4proto tcp, th [off] in [First, Last]" followed by then.
func tcpPorts(off uint32, cfg Config, then ...expr.Any) []expr.Any {
	return append([]expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Range{Op: expr.CmpOpEq, Register: 1,
			FromData: binary.BigEndian.AppendUint16(nil, cfg.First), ToData: binary.BigEndian.AppendUint16(nil, cfg.Last)},
	}, then...)
}

// Counters reads the rules' counters.
func (g *Guard) Counters() (Counters, error) {
	var c Counters
	for _, x := range []struct {
		chain *nftables.Chain
		n     *uint64
	}{{g.input, &c.Diverted}, {g.out, &c.RSTs}} {
		rules, err := g.conn.GetRules(g.table, x.chain)
		if err != nil {
			return Counters{}, fmt.Errorf("rstguard: read counters: %w", err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					*x.n += ctr.Packets
				}
			}
		}
	}
	return c, nil
}

// Close deletes the table and closes the netlink socket that owns it. It is idempotent.
func (g *Guard) Close() error {
	g.closeOnce.Do(func() {
		g.conn.DelTable(g.table)
		if err := g.conn.Flush(); err != nil {
			g.closeErr = fmt.Errorf("rstguard: remove table %s: %w", g.table.Name, err)
		}
		g.conn.CloseLasting() // removes an owned table whatever became of the delete
	})
	return g.closeErr
}
