package balance

import (
	"encoding/binary"
	"fmt"
	"net"
)

// Insn is one classic BPF instruction (struct sock_filter).
type Insn struct {
	Op     uint16
	Jt, Jf uint8
	K      uint32
}

// Classic BPF opcodes used by Program (linux/filter.h, linux/bpf_common.h).
const (
	bpfLD   = 0x00
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfRET  = 0x06
	bpfMISC = 0x07

	bpfW   = 0x00
	bpfH   = 0x08
	bpfB   = 0x10
	bpfIMM = 0x00
	bpfABS = 0x20

	bpfAND = 0x50
	bpfLSH = 0x60
	bpfMOD = 0x90
	bpfXOR = 0xa0
	bpfK   = 0x00
	bpfX   = 0x08

	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGE  = 0x30
	bpfJSET = 0x40

	bpfTAX = 0x00

	// Negative load offsets: the link-layer header, the network header and
	// the ancillary data (skb->protocol).
	skfLLOff       = 0xffe00000 // -0x200000
	skfNetOff      = 0xfff00000 // -0x100000
	skfADProtocol  = 0xfffff000 // SKF_AD_OFF + SKF_AD_PROTOCOL
	ethPIPv4       = 0x0800
	ethPIPv6       = 0x86dd
	retMatch       = 0xffffffff // cls_bpf: match, run the filter's actions
	retPass        = 0          // cls_bpf: no match
	maxProgramInsn = 64
)

// asm builds a program with forward jumps to named labels.
type asm struct {
	prog   []Insn
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at     int
	jt, jf string // "" means the next instruction
}

func (a *asm) op(op uint16, k uint32) { a.prog = append(a.prog, Insn{Op: op, K: k}) }

// jmp adds a conditional jump to label jt when true, jf when false.
func (a *asm) jmp(op uint16, k uint32, jt, jf string) {
	a.fixups = append(a.fixups, fixup{at: len(a.prog), jt: jt, jf: jf})
	a.op(bpfJMP|op|bpfK, k)
}

func (a *asm) label(name string) { a.labels[name] = len(a.prog) }

func (a *asm) resolve() ([]Insn, error) {
	for _, f := range a.fixups {
		for _, side := range [2]struct {
			name string
			dst  *uint8
		}{{f.jt, &a.prog[f.at].Jt}, {f.jf, &a.prog[f.at].Jf}} {
			if side.name == "" {
				continue
			}
			to, ok := a.labels[side.name]
			if !ok || to <= f.at || to-f.at-1 > 255 {
				return nil, fmt.Errorf("balance: bad jump to %q", side.name)
			}
			*side.dst = uint8(to - f.at - 1)
		}
	}
	return a.prog, nil
}

// Program compiles the ownership rule for one balanced virtual host into a
// classic BPF program for tc's ingress hook (cls_bpf). It matches (returns
// non-zero, so the filter's drop action runs) exactly the frames this
// router must not handle: addressed to mac, IPv4 or IPv6, not ICMP, ICMPv6
// or CARP, to a unicast address, whose node fold(src, dst) mod nodes is not
// in mask. Everything else does not match and goes on to the stack. Loads
// use the link-layer and network-header offsets, so the program does not
// depend on where the skb's data starts; a frame too short for a load ends
// the program with "no match", and the stack drops it as malformed.
func Program(mac net.HardwareAddr, nodes int, mask uint32) ([]Insn, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("balance: MAC %v is not 6 bytes", mac)
	}
	if nodes < 1 || nodes > MaxNodes {
		return nil, fmt.Errorf("balance: %d nodes, want 1-%d", nodes, MaxNodes)
	}
	a := &asm{labels: map[string]int{}}
	a.op(bpfLD|bpfW|bpfABS, skfLLOff)
	a.jmp(bpfJEQ, binary.BigEndian.Uint32(mac[:4]), "", "pass")
	a.op(bpfLD|bpfH|bpfABS, skfLLOff+4)
	a.jmp(bpfJEQ, uint32(binary.BigEndian.Uint16(mac[4:])), "", "pass")
	a.op(bpfLD|bpfW|bpfABS, skfADProtocol)
	a.jmp(bpfJEQ, ethPIPv4, "v4", "")
	a.jmp(bpfJEQ, ethPIPv6, "v6", "pass")

	a.label("v4")
	a.op(bpfLD|bpfB|bpfABS, skfNetOff+9) // protocol
	a.jmp(bpfJEQ, protoICMP, "pass", "")
	a.jmp(bpfJEQ, protoCARP, "pass", "")
	a.op(bpfLD|bpfW|bpfABS, skfNetOff+16) // destination
	a.jmp(bpfJGE, 0xe0000000, "pass", "")
	a.op(bpfMISC|bpfTAX, 0)
	a.op(bpfLD|bpfW|bpfABS, skfNetOff+12) // source
	a.op(bpfALU|bpfXOR|bpfX, 0)
	a.jmp(bpfJA, 0, "hash", "") // JA's offset is K; fixed below

	a.label("v6")
	a.op(bpfLD|bpfB|bpfABS, skfNetOff+6) // next header
	a.jmp(bpfJEQ, protoICMPv6, "pass", "")
	a.jmp(bpfJEQ, protoCARP, "pass", "")
	a.op(bpfLD|bpfB|bpfABS, skfNetOff+24) // destination's first byte
	a.jmp(bpfJEQ, 0xff, "pass", "")
	a.op(bpfLD|bpfW|bpfABS, skfNetOff+8)
	for off := uint32(12); off < 40; off += 4 {
		a.op(bpfMISC|bpfTAX, 0)
		a.op(bpfLD|bpfW|bpfABS, skfNetOff+off)
		a.op(bpfALU|bpfXOR|bpfX, 0)
	}

	a.label("hash") // A = fold, already in host order: loads are big-endian
	a.op(bpfALU|bpfMOD|bpfK, uint32(nodes))
	a.op(bpfMISC|bpfTAX, 0)
	a.op(bpfLD|bpfW|bpfIMM, 1)
	a.op(bpfALU|bpfLSH|bpfX, 0)
	a.jmp(bpfJSET, mask, "pass", "")
	a.op(bpfRET|bpfK, retMatch)
	a.label("pass")
	a.op(bpfRET|bpfK, retPass)

	prog, err := a.resolve()
	if err != nil {
		return nil, err
	}
	// BPF_JA jumps by K, not by Jt: move the resolved offset there.
	for i := range prog {
		if prog[i].Op == bpfJMP|bpfJA {
			prog[i].K, prog[i].Jt = uint32(prog[i].Jt), 0
		}
	}
	if len(prog) > maxProgramInsn {
		return nil, fmt.Errorf("balance: program of %d instructions", len(prog))
	}
	return prog, nil
}

// PtypeProgram matches every frame addressed to mac. Its filter's action
// marks them as addressed to this host: Linux classifies a frame to a
// multicast MAC (balancing ip) as PACKET_MULTICAST and one to a unicast MAC
// other than the interface's own (ip-stealth, ip-unicast) as
// PACKET_OTHERHOST, and neither is routed.
func PtypeProgram(mac net.HardwareAddr) ([]Insn, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("balance: MAC %v is not 6 bytes", mac)
	}
	a := &asm{labels: map[string]int{}}
	a.op(bpfLD|bpfW|bpfABS, skfLLOff)
	a.jmp(bpfJEQ, binary.BigEndian.Uint32(mac[:4]), "", "pass")
	a.op(bpfLD|bpfH|bpfABS, skfLLOff+4)
	a.jmp(bpfJEQ, uint32(binary.BigEndian.Uint16(mac[4:])), "", "pass")
	a.op(bpfRET|bpfK, retMatch)
	a.label("pass")
	a.op(bpfRET|bpfK, retPass)
	return a.resolve()
}
