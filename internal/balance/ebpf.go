package balance

import (
	"encoding/binary"
	"fmt"
	"net"
)

// eBPF instruction fields (linux/bpf.h, linux/bpf_common.h).
const (
	bpfLD    = 0x00
	bpfLDX   = 0x01
	bpfST    = 0x02
	bpfALU   = 0x04
	bpfJMP   = 0x05
	bpfALU64 = 0x07

	bpfW   = 0x00
	bpfH   = 0x08
	bpfB   = 0x10
	bpfDW  = 0x18
	bpfIMM = 0x00
	bpfABS = 0x20
	bpfMEM = 0x60

	bpfADD = 0x00
	bpfAND = 0x50
	bpfRSH = 0x70
	bpfMOD = 0x90
	bpfXOR = 0xa0
	bpfMOV = 0xb0
	bpfK   = 0x00
	bpfX   = 0x08

	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGE  = 0x30
	bpfJNE  = 0x50
	bpfCALL = 0x80
	bpfEXIT = 0x90

	pseudoMapFD = 1 // src_reg of a 64-bit immediate load of a map's fd

	fnMapLookupElem = 1
	fnSkbChangeType = 32

	// Negative LD_ABS offsets: the link-layer header and the network
	// header, wherever skb->data is.
	skfLLOff  = -0x200000
	skfNetOff = -0x100000

	skbProtocolOff = 16 // offsetof(struct __sk_buff, protocol)
	ethPIPv4       = 0x0800
	ethPIPv6       = 0x86dd
	tcActUnspec    = -1 // go on with the next filter
	tcActShot      = 2  // drop
	packetHost     = 0
)

// Registers.
const (
	r0, r1, r2, r6, r7, r8, r10 = 0, 1, 2, 6, 7, 8, 10
)

// ins is one eBPF instruction before encoding.
type ins struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	jump     string // label of a jump's target, resolved into off
}

type ebpf struct {
	prog   []ins
	labels map[string]int
}

func (e *ebpf) emit(i ins)        { e.prog = append(e.prog, i) }
func (e *ebpf) label(name string) { e.labels[name] = len(e.prog) }
func (e *ebpf) ldabs(size uint8, k int32) {
	e.emit(ins{code: bpfLD | size | bpfABS, imm: k})
}
func (e *ebpf) alu64(op, dst uint8, imm int32) {
	e.emit(ins{code: bpfALU64 | op | bpfK, dst: dst, imm: imm})
}
func (e *ebpf) alu64x(op, dst, src uint8) {
	e.emit(ins{code: bpfALU64 | op | bpfX, dst: dst, src: src})
}
func (e *ebpf) jmp(op, dst uint8, imm int32, to string) {
	e.emit(ins{code: bpfJMP | op | bpfK, dst: dst, imm: imm, jump: to})
}
func (e *ebpf) call(fn int32) { e.emit(ins{code: bpfJMP | bpfCALL, imm: fn}) }
func (e *ebpf) exit(ret int32) {
	e.alu64(bpfMOV, r0, ret)
	e.emit(ins{code: bpfJMP | bpfEXIT})
}

// Program returns the eBPF program (struct bpf_insn array, in the host's
// byte order) of the ownership rule for one balanced virtual host, for
// cls_bpf in direct-action mode at tc ingress. mapFD is an array map of one
// 32-bit value, the owned mask. For a frame addressed to mac it sets the
// packet type to PACKET_HOST (Linux routes nothing it received as
// multicast or as addressed to another host) and then drops (TC_ACT_SHOT)
// an IPv4 or IPv6 packet that is not ICMP, ICMPv6 or CARP, to a unicast
// address, whose node fold(src, dst) mod nodes is not in the mask. Every
// other frame goes on (TC_ACT_UNSPEC). A frame too short for a load ends
// the program with TC_ACT_OK: it passes and the stack drops it as
// malformed.
func Program(mac net.HardwareAddr, nodes int, mapFD int) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("balance: MAC %v is not 6 bytes", mac)
	}
	if nodes < 1 || nodes > MaxNodes {
		return nil, fmt.Errorf("balance: %d nodes, want 1-%d", nodes, MaxNodes)
	}
	// skb->protocol is big-endian in memory, loaded as a host-order u32.
	hostOrder := func(ethType uint16) int32 {
		return int32(binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, ethType)))
	}
	e := &ebpf{labels: map[string]int{}}
	e.alu64x(bpfMOV, r6, r1) // LD_ABS wants the context in R6
	e.ldabs(bpfW, skfLLOff)
	e.jmp(bpfJNE, r0, int32(binary.BigEndian.Uint32(mac[:4])), "next")
	e.ldabs(bpfH, skfLLOff+4)
	e.jmp(bpfJNE, r0, int32(binary.BigEndian.Uint16(mac[4:])), "next")
	e.alu64x(bpfMOV, r1, r6)
	e.alu64(bpfMOV, r2, packetHost)
	e.call(fnSkbChangeType)
	e.emit(ins{code: bpfLDX | bpfW | bpfMEM, dst: r0, src: r6, off: skbProtocolOff})
	e.jmp(bpfJEQ, r0, hostOrder(ethPIPv4), "v4")
	e.jmp(bpfJEQ, r0, hostOrder(ethPIPv6), "v6")
	e.jmp(bpfJA, 0, 0, "next")

	e.label("v4")
	e.ldabs(bpfB, skfNetOff+9) // protocol
	e.jmp(bpfJEQ, r0, protoICMP, "next")
	e.jmp(bpfJEQ, r0, protoCARP, "next")
	e.ldabs(bpfW, skfNetOff+16) // destination
	e.alu64x(bpfMOV, r7, r0)
	e.alu64(bpfRSH, r0, 24)
	e.jmp(bpfJGE, r0, 224, "next") // multicast, class E, broadcast
	e.ldabs(bpfW, skfNetOff+12)    // source
	e.alu64x(bpfXOR, r7, r0)
	e.jmp(bpfJA, 0, 0, "hash")

	e.label("v6")
	e.ldabs(bpfB, skfNetOff+6) // next header
	e.jmp(bpfJEQ, r0, protoICMPv6, "next")
	e.jmp(bpfJEQ, r0, protoCARP, "next")
	e.ldabs(bpfB, skfNetOff+24) // destination's first byte
	e.jmp(bpfJEQ, r0, 0xff, "next")
	e.alu64(bpfMOV, r7, 0)
	for off := int32(8); off < 40; off += 4 {
		e.ldabs(bpfW, skfNetOff+off)
		e.alu64x(bpfXOR, r7, r0)
	}

	// R7 is the fold, in host order (LD_ABS loads big-endian).
	e.label("hash")
	e.emit(ins{code: bpfALU | bpfMOV | bpfX, dst: r8, src: r7})
	e.emit(ins{code: bpfALU | bpfMOD | bpfK, dst: r8, imm: int32(nodes)}) // 32-bit unsigned
	e.emit(ins{code: bpfST | bpfW | bpfMEM, dst: r10, off: -4, imm: 0})
	e.emit(ins{code: bpfLD | bpfDW | bpfIMM, dst: r1, src: pseudoMapFD, imm: int32(mapFD)})
	e.emit(ins{})
	e.alu64x(bpfMOV, r2, r10)
	e.alu64(bpfADD, r2, -4)
	e.call(fnMapLookupElem)
	e.jmp(bpfJEQ, r0, 0, "next")
	e.emit(ins{code: bpfLDX | bpfW | bpfMEM, dst: r1, src: r0})
	e.alu64x(bpfRSH, r1, r8)
	e.alu64(bpfAND, r1, 1)
	e.jmp(bpfJNE, r1, 0, "next")
	e.exit(tcActShot)
	e.label("next")
	e.exit(tcActUnspec)
	return e.encode()
}

// encode resolves jumps and lays the instructions out as struct bpf_insn:
// code, the two 4-bit registers (a C bit-field, so their order follows
// the host's byte order), off and imm in host order.
func (e *ebpf) encode() ([]byte, error) {
	bigEndian := binary.NativeEndian.Uint16([]byte{0, 1}) == 1
	b := make([]byte, 0, 8*len(e.prog))
	for pc, in := range e.prog {
		if in.jump != "" {
			to, ok := e.labels[in.jump]
			if !ok || to <= pc {
				return nil, fmt.Errorf("balance: bad jump to %q", in.jump)
			}
			in.off = int16(to - pc - 1)
		}
		regs := in.src<<4 | in.dst
		if bigEndian {
			regs = in.dst<<4 | in.src
		}
		b = append(b, in.code, regs)
		b = binary.NativeEndian.AppendUint16(b, uint16(in.off))
		b = binary.NativeEndian.AppendUint32(b, uint32(in.imm))
	}
	return b, nil
}
