package sockfilter

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// SnapLen is how many bytes of a matching packet the filters keep: all of any IP packet.
const SnapLen = 1 << 18

// Match says which packets a filter keeps.
type Match struct {
	Src         netip.AddrPort // source address (IPv4 or IPv6; its family is the filter's) and port
	First, Last uint16         // destination ports, inclusive
}

// Program returns the filter for m, with the IP header at offset 0. Everything but TCP
// from m.Src to a port in [m.First, m.Last] is dropped.
func Program(m Match) ([]bpf.Instruction, error) {
	a := m.Src.Addr().Unmap()
	if !a.IsValid() || m.First > m.Last {
		return nil, fmt.Errorf("sockfilter: match %v to ports %d-%d: want a source address and first <= last", m.Src, m.First, m.Last)
	}
	var p prog
	p.add(bpf.LoadAbsolute{Off: 0, Size: 1}) // version nibble
	p.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
	if a.Is4() {
		b := a.As4()
		p.jne(4)
		p.add(bpf.LoadAbsolute{Off: 9, Size: 1}) // protocol
		p.jne(6)
		p.add(bpf.LoadAbsolute{Off: 6, Size: 2}) // flags and fragment offset
		p.jset(0x3fff)                           // MF or an offset: drop
		p.add(bpf.LoadAbsolute{Off: 12, Size: 4})
		p.jne(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		p.add(bpf.LoadMemShift{Off: 0}) // X = IP header length
		p.add(bpf.LoadIndirect{Off: 0, Size: 2})
		p.jne(uint32(m.Src.Port()))
		p.add(bpf.LoadIndirect{Off: 2, Size: 2})
	} else {
		b := a.As16()
		p.jne(6)
		p.add(bpf.LoadAbsolute{Off: 6, Size: 1}) // next header: TCP, no extension headers
		p.jne(6)
		for i := 0; i < 16; i += 4 {
			p.add(bpf.LoadAbsolute{Off: uint32(8 + i), Size: 4})
			p.jne(uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3]))
		}
		p.add(bpf.LoadAbsolute{Off: 40, Size: 2})
		p.jne(uint32(m.Src.Port()))
		p.add(bpf.LoadAbsolute{Off: 42, Size: 2})
	}
	p.jlt(uint32(m.First))
	p.jgt(uint32(m.Last))
	p.add(bpf.RetConstant{Val: SnapLen})
	return p.finish(), nil
}

// Assemble returns Program(m) in the kernel's form, for SO_ATTACH_FILTER.
func Assemble(m Match) ([]bpf.RawInstruction, error) {
	insns, err := Program(m)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insns)
	if err != nil {
		return nil, fmt.Errorf("sockfilter: assemble: %w", err)
	}
	return raw, nil
}

// DropAll is a filter that keeps nothing.
func DropAll() []bpf.RawInstruction {
	raw, _ := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	return raw
}

// prog is a straight-line program whose conditional jumps all lead to one final "drop".
type prog struct {
	insns []bpf.Instruction
	drops []int // indexes of jumps whose skip to drop is filled in by finish
}

func (p *prog) add(i bpf.Instruction) { p.insns = append(p.insns, i) }

// jump adds a conditional jump that drops the packet when cond(A, val) is true.
func (p *prog) jump(cond bpf.JumpTest, val uint32) {
	p.drops = append(p.drops, len(p.insns))
	p.add(bpf.JumpIf{Cond: cond, Val: val})
}

func (p *prog) jne(v uint32)  { p.jump(bpf.JumpNotEqual, v) }
func (p *prog) jset(v uint32) { p.jump(bpf.JumpBitsSet, v) }
func (p *prog) jlt(v uint32)  { p.jump(bpf.JumpLessThan, v) }
func (p *prog) jgt(v uint32)  { p.jump(bpf.JumpGreaterThan, v) }

// finish appends "drop" and points every drop jump at it. Programs are far shorter than a
// jump's 255-instruction reach.
func (p *prog) finish() []bpf.Instruction {
	drop := len(p.insns)
	p.add(bpf.RetConstant{Val: 0})
	for _, i := range p.drops {
		j := p.insns[i].(bpf.JumpIf)
		j.SkipTrue = uint8(drop - i - 1)
		p.insns[i] = j
	}
	return p.insns
}
