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

// ins is one eBPF instruction of the program's template: its fields, the
// label a jump goes to (resolved into off), and which per-program value
// fills imm.
type ins struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
	to       uint8 // jump target: a label, lNone for none
	patch    uint8 // pNone, or the value to put in imm
}

// Labels (jump targets), placed by label pseudo-instructions.
const (
	lNone = iota
	lV4
	lV6
	lHash
	lNext
	nLabels
)

// Per-program values.
const (
	pNone  = iota
	pMACHi // first four bytes of the cluster MAC
	pMACLo // last two
	pIPv4  // ETH_P_IP as skb->protocol reads in host order
	pIPv6  // ETH_P_IPV6 likewise
	pNodes // the node count
	pMapFD // the mask map
)

const opLabel = 0xff // pseudo-instruction: imm is the label

// program is the template of Program, in order:
//
//	frame not to the cluster MAC: next
//	mark it PACKET_HOST
//	IPv4: ICMP, CARP, dst >= 224.0.0.0: next; fold = src ^ dst
//	IPv6: ICMPv6, CARP, dst ff00::/8: next; fold = XOR of the 8 words
//	index = fold mod nodes; mask = map[0]; bit index set: next; else drop
//	next: TC_ACT_UNSPEC
var program = []ins{
	{code: bpfALU64 | bpfMOV | bpfX, dst: r6, src: r1}, // LD_ABS wants the context in R6
	{code: bpfLD | bpfW | bpfABS, imm: skfLLOff},
	{code: bpfJMP | bpfJNE | bpfK, dst: r0, to: lNext, patch: pMACHi},
	{code: bpfLD | bpfH | bpfABS, imm: skfLLOff + 4},
	{code: bpfJMP | bpfJNE | bpfK, dst: r0, to: lNext, patch: pMACLo},
	{code: bpfALU64 | bpfMOV | bpfX, dst: r1, src: r6},
	{code: bpfALU64 | bpfMOV | bpfK, dst: r2, imm: packetHost},
	{code: bpfJMP | bpfCALL, imm: fnSkbChangeType},
	{code: bpfLDX | bpfW | bpfMEM, dst: r0, src: r6, off: skbProtocolOff},
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, to: lV4, patch: pIPv4},
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, to: lV6, patch: pIPv6},
	{code: bpfJMP | bpfJA | bpfK, dst: 0, imm: 0, to: lNext},

	{code: opLabel, imm: lV4},
	{code: bpfLD | bpfB | bpfABS, imm: skfNetOff + 9}, // protocol
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: protoICMP, to: lNext},
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: protoCARP, to: lNext},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 16}, // destination
	{code: bpfALU64 | bpfMOV | bpfX, dst: r7, src: r0},
	{code: bpfALU64 | bpfRSH | bpfK, dst: r0, imm: 24},
	{code: bpfJMP | bpfJGE | bpfK, dst: r0, imm: 224, to: lNext}, // multicast, class E, broadcast
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 12},           // source
	{code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfJMP | bpfJA | bpfK, dst: 0, imm: 0, to: lHash},

	{code: opLabel, imm: lV6},
	{code: bpfLD | bpfB | bpfABS, imm: skfNetOff + 6}, // next header
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: protoICMPv6, to: lNext},
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: protoCARP, to: lNext},
	{code: bpfLD | bpfB | bpfABS, imm: skfNetOff + 24}, // destination's first byte
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: 0xff, to: lNext},
	{code: bpfALU64 | bpfMOV | bpfK, dst: r7, imm: 0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 8}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0}, // source
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 12}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 16}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 20}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 24}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0}, // destination
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 28}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 32}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},
	{code: bpfLD | bpfW | bpfABS, imm: skfNetOff + 36}, {code: bpfALU64 | bpfXOR | bpfX, dst: r7, src: r0},

	// R7 is the fold, in host order (LD_ABS loads big-endian).
	{code: opLabel, imm: lHash},
	{code: bpfALU | bpfMOV | bpfX, dst: r8, src: r7},
	{code: bpfALU | bpfMOD | bpfK, dst: r8, patch: pNodes}, // 32-bit unsigned
	{code: bpfST | bpfW | bpfMEM, dst: r10, off: -4},       // key 0
	{code: bpfLD | bpfDW | bpfIMM, dst: r1, src: pseudoMapFD, patch: pMapFD},
	{},
	{code: bpfALU64 | bpfMOV | bpfX, dst: r2, src: r10},
	{code: bpfALU64 | bpfADD | bpfK, dst: r2, imm: -4},
	{code: bpfJMP | bpfCALL, imm: fnMapLookupElem},
	{code: bpfJMP | bpfJEQ | bpfK, dst: r0, imm: 0, to: lNext},
	{code: bpfLDX | bpfW | bpfMEM, dst: r1, src: r0},
	{code: bpfALU64 | bpfRSH | bpfX, dst: r1, src: r8},
	{code: bpfALU64 | bpfAND | bpfK, dst: r1, imm: 1},
	{code: bpfJMP | bpfJNE | bpfK, dst: r1, imm: 0, to: lNext},
	{code: bpfALU64 | bpfMOV | bpfK, dst: r0, imm: tcActShot},
	{code: bpfJMP | bpfEXIT},
	{code: opLabel, imm: lNext},
	{code: bpfALU64 | bpfMOV | bpfK, dst: r0, imm: tcActUnspec},
	{code: bpfJMP | bpfEXIT},
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
	be := binary.BigEndian
	ne := binary.NativeEndian
	// skb->protocol is big-endian in memory, loaded as a host-order u32.
	values := [...]int32{
		pMACHi: int32(be.Uint32(mac)),
		pMACLo: int32(be.Uint16(mac[4:])),
		pIPv4:  int32(ne.Uint16(be.AppendUint16(nil, ethPIPv4))),
		pIPv6:  int32(ne.Uint16(be.AppendUint16(nil, ethPIPv6))),
		pNodes: int32(nodes),
		pMapFD: int32(mapFD),
	}
	var at [nLabels]int
	n := 0
	for _, in := range program {
		if in.code == opLabel {
			at[in.imm] = n
		} else {
			n++
		}
	}
	// struct bpf_insn: code, the two 4-bit registers (a C bit-field, so
	// their order follows the host's byte order), off and imm.
	bigEndian := ne.Uint16([]byte{0, 1}) == 1
	b := make([]byte, 0, 8*n)
	pc := 0
	for _, in := range program {
		if in.code == opLabel {
			continue
		}
		if in.to != lNone {
			in.off = int16(at[in.to] - pc - 1)
		}
		if in.patch != pNone {
			in.imm = values[in.patch]
		}
		regs := in.src<<4 | in.dst
		if bigEndian {
			regs = in.dst<<4 | in.src
		}
		b = append(b, in.code, regs)
		b = ne.AppendUint16(b, uint16(in.off))
		b = ne.AppendUint32(b, uint32(in.imm))
		pc++
	}
	return b, nil
}
