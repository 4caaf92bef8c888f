package balance

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

// Vectors derived by hand from the definition (ntohl of the XOR of the
// address words, mod N); the derivations are in the comments.
func TestIndexVectors(t *testing.T) {
	tests := []struct {
		src, dst string
		fold     uint32
		mod      map[int]int
	}{
		// 0a000001 ^ 0a000002 = 00000003.
		{"10.0.0.1", "10.0.0.2", 3, map[int]int{1: 0, 2: 1, 3: 0, 5: 3, 32: 3}},
		// c0a8010a ^ 08080808 = c8a00902 = 3365931266; digit sum 44, so
		// mod 3 = 2; last digit 6, so mod 5 = 1; 7*480847323 = 3365931261,
		// so mod 7 = 5; low five bits 00010, so mod 32 = 2. Read
		// little-endian by mistake it would be 0209a0c8 (mod 3 = 1).
		{"192.168.1.10", "8.8.8.8", 0xc8a00902, map[int]int{2: 0, 3: 2, 5: 1, 7: 5, 32: 2}},
		// Swapped: the hash is symmetric.
		{"8.8.8.8", "192.168.1.10", 0xc8a00902, map[int]int{3: 2, 7: 5}},
		// 20010db8^20010db8 = 0, 0^0, 0^0, 1^2 = 3.
		{"2001:db8::1", "2001:db8::2", 3, map[int]int{2: 1, 3: 0, 32: 3}},
		// Words 20010db8 00010002 00000000 0000000a and fe800000 00000000
		// 00000001 ff000000: 20010db8^00010002 = 20000dba, ^0000000a =
		// 20000db0, ^fe800000 = de800db0, ^00000001 = de800db1, ^ff000000
		// = 21800db1 = 562040241; digit sum 24, so mod 3 = 0; 7*80291463 =
		// 562040241, so mod 7 = 0; low five bits 10001, so mod 32 = 17.
		{"2001:db8:1:2::a", "fe80::1:ff00:0", 0x21800db1, map[int]int{2: 1, 3: 0, 5: 1, 7: 0, 32: 17}},
	}
	for _, tt := range tests {
		src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
		if fold, ok := Fold(src, dst); !ok || fold != tt.fold {
			t.Errorf("Fold(%s, %s) = %#x, %v; want %#x", src, dst, fold, ok, tt.fold)
		}
		for n, want := range tt.mod {
			if got, ok := Index(src, dst, n); !ok || got != want {
				t.Errorf("Index(%s, %s, %d) = %d, %v; want %d", src, dst, n, got, ok, want)
			}
		}
	}
	for _, bad := range [][2]string{{"10.0.0.1", "2001:db8::1"}, {"10.0.0.1", ""}} {
		var d netip.Addr
		if bad[1] != "" {
			d = netip.MustParseAddr(bad[1])
		}
		if _, ok := Index(netip.MustParseAddr(bad[0]), d, 2); ok {
			t.Errorf("Index(%s, %q) accepted a mixed or invalid pair", bad[0], bad[1])
		}
	}
	for _, n := range []int{0, -1, MaxNodes + 1} {
		if _, ok := Index(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), n); ok {
			t.Errorf("Index with %d nodes accepted", n)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct {
		master []bool
		want   uint32
	}{
		{nil, 0},
		{[]bool{true, false}, 1},
		{[]bool{false, true, true}, 6},
		{append(make([]bool, 31), true), 1 << 31},
		{append(make([]bool, 32), true), 0}, // node 33 ignored
	}
	for _, tt := range tests {
		if got := Mask(tt.master); got != tt.want {
			t.Errorf("Mask(%v) = %#x, want %#x", tt.master, got, tt.want)
		}
	}
	if !Owns(6, 1) || !Owns(6, 2) || Owns(6, 0) || Owns(6, 32) || Owns(6, -1) {
		t.Error("Owns(6, ...) wrong")
	}
}

func TestAccept(t *testing.T) {
	a := netip.MustParseAddr
	// 10.0.0.1 ^ 10.0.0.2 = 3: node 1 of 2, node 0 of 3.
	tests := []struct {
		src, dst string
		proto    uint8
		mask     uint32
		n        int
		want     bool
	}{
		{"10.0.0.1", "10.0.0.2", 6, 0b10, 2, true},
		{"10.0.0.1", "10.0.0.2", 6, 0b01, 2, false},
		{"10.0.0.1", "10.0.0.2", 17, 0b001, 3, true},
		{"10.0.0.1", "10.0.0.2", 17, 0b110, 3, false},
		{"10.0.0.1", "10.0.0.2", protoICMP, 0, 2, true},
		{"10.0.0.1", "10.0.0.2", protoCARP, 0, 2, true},
		{"10.0.0.1", "224.0.0.18", 6, 0, 2, true},
		{"10.0.0.1", "255.255.255.255", 17, 0, 2, true},
		{"2001:db8::1", "2001:db8::2", 6, 0b01, 2, false},
		{"2001:db8::1", "2001:db8::2", protoICMPv6, 0, 2, true},
		{"2001:db8::1", "ff02::1", 17, 0, 2, true},
		// ICMP's number means nothing in IPv6's next header, and back.
		{"2001:db8::1", "2001:db8::2", protoICMP, 0, 2, false},
		{"10.0.0.1", "10.0.0.2", protoICMPv6, 0, 2, false},
	}
	for _, tt := range tests {
		if got := Accept(a(tt.src), a(tt.dst), tt.proto, tt.mask, tt.n); got != tt.want {
			t.Errorf("Accept(%s, %s, %d, %#b, %d) = %v, want %v", tt.src, tt.dst, tt.proto, tt.mask, tt.n, got, tt.want)
		}
	}
}

// run interprets a classic BPF program the way the kernel runs cls_bpf at
// tc ingress: frame is the whole Ethernet frame, skb->data is its network
// header (offset 14), absolute loads beyond the frame end the program with
// 0. Only the instructions Program emits are known; others fail the test.
func run(t *testing.T, prog []Insn, frame []byte) uint32 {
	t.Helper()
	const netOff = 14
	proto := uint32(binary.BigEndian.Uint16(frame[12:14]))
	var A, X uint32
	load := func(k uint32, size int) (uint32, bool) {
		var at int
		switch {
		case k == skfADProtocol:
			return proto, true
		case k >= skfLLOff && k < skfNetOff:
			at = int(k - skfLLOff)
		case k >= skfNetOff && k < skfADProtocol:
			at = netOff + int(k-skfNetOff)
		case k < 0x80000000:
			at = netOff + int(k)
		default:
			return 0, false
		}
		if at+size > len(frame) {
			return 0, false
		}
		switch size {
		case 4:
			return binary.BigEndian.Uint32(frame[at:]), true
		case 2:
			return uint32(binary.BigEndian.Uint16(frame[at:])), true
		}
		return uint32(frame[at]), true
	}
	for pc, steps := 0, 0; pc < len(prog) && steps < 1000; pc, steps = pc+1, steps+1 {
		in := prog[pc]
		var ok bool
		switch in.Op {
		case bpfLD | bpfW | bpfABS:
			if A, ok = load(in.K, 4); !ok {
				return 0
			}
		case bpfLD | bpfH | bpfABS:
			if A, ok = load(in.K, 2); !ok {
				return 0
			}
		case bpfLD | bpfB | bpfABS:
			if A, ok = load(in.K, 1); !ok {
				return 0
			}
		case bpfLD | bpfW | bpfIMM:
			A = in.K
		case bpfMISC | bpfTAX:
			X = A
		case bpfALU | bpfXOR | bpfX:
			A ^= X
		case bpfALU | bpfMOD | bpfK:
			A %= in.K
		case bpfALU | bpfLSH | bpfX:
			A <<= X & 31
		case bpfJMP | bpfJA:
			pc += int(in.K)
		case bpfJMP | bpfJEQ | bpfK:
			pc += int(pick(A == in.K, in.Jt, in.Jf))
		case bpfJMP | bpfJGE | bpfK:
			pc += int(pick(A >= in.K, in.Jt, in.Jf))
		case bpfJMP | bpfJSET | bpfK:
			pc += int(pick(A&in.K != 0, in.Jt, in.Jf))
		case bpfRET | bpfK:
			return in.K
		default:
			t.Fatalf("pc %d: opcode %#x not known to the test's interpreter", pc, in.Op)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func pick(c bool, jt, jf uint8) uint8 {
	if c {
		return jt
	}
	return jf
}

// frame builds an Ethernet frame to dstMAC with an IP header from src to
// dst carrying proto (and 8 bytes of payload).
func frame(dstMAC net.HardwareAddr, src, dst netip.Addr, proto uint8) []byte {
	f := append([]byte(nil), dstMAC...)
	f = append(f, 0x02, 0, 0, 0, 0, 9)
	if src.Is4() {
		f = binary.BigEndian.AppendUint16(f, ethPIPv4)
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 64, proto
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		f = append(f, h...)
	} else {
		f = binary.BigEndian.AppendUint16(f, ethPIPv6)
		h := make([]byte, 40)
		h[0], h[6], h[7] = 0x60, proto, 64
		s, d := src.As16(), dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		f = append(f, h...)
	}
	return append(f, make([]byte, 8)...)
}

// TestProgramMatchesAccept runs the compiled program against the pure rule
// on random packets, node counts and masks.
func TestProgramMatchesAccept(t *testing.T) {
	mac := net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x01, 0x07}
	other := net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	r := rand.New(rand.NewPCG(1, 2))
	protos := []uint8{6, 17, protoICMP, protoICMPv6, protoCARP, 47}
	for i := 0; i < 20000; i++ {
		n := 1 + r.IntN(MaxNodes)
		mask := r.Uint32()
		if r.IntN(4) == 0 {
			mask &= 1<<uint(r.IntN(32)) | 1<<uint(r.IntN(32))
		}
		var src, dst netip.Addr
		if r.IntN(2) == 0 {
			src = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
			dst = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		} else {
			var s, d [16]byte
			for j := range s {
				s[j], d[j] = byte(r.Uint32()), byte(r.Uint32())
			}
			if r.IntN(8) != 0 {
				d[0] = 0x20 // mostly unicast
			}
			src, dst = netip.AddrFrom16(s), netip.AddrFrom16(d)
		}
		proto := protos[r.IntN(len(protos))]
		prog, err := Program(mac, n, mask)
		if err != nil {
			t.Fatal(err)
		}
		drop := run(t, prog, frame(mac, src, dst, proto)) != retPass
		if want := !Accept(src, dst, proto, mask, n); drop != want {
			t.Fatalf("%s > %s proto %d, %d nodes, mask %#x: program drops %v, rule drops %v", src, dst, proto, n, mask, drop, want)
		}
		if run(t, prog, frame(other, src, dst, proto)) != retPass {
			t.Fatalf("%s > %s: a frame to another MAC matched", src, dst)
		}
	}
}

func TestProgramEdges(t *testing.T) {
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
	prog, err := Program(mac, 2, 0) // owns nothing
	if err != nil {
		t.Fatal(err)
	}
	f := frame(mac, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6)
	if run(t, prog, f) != retMatch {
		t.Fatal("an unowned packet passed")
	}
	// Truncated inside the IPv4 header: no match, the stack drops it.
	if got := run(t, prog, f[:14+14]); got != retPass {
		t.Fatalf("a truncated frame matched: %#x", got)
	}
	// ARP to the cluster MAC always passes.
	arp := append([]byte(nil), f...)
	arp[12], arp[13] = 0x08, 0x06
	if run(t, prog, arp) != retPass {
		t.Fatal("ARP matched")
	}
	pt, err := PtypeProgram(mac)
	if err != nil {
		t.Fatal(err)
	}
	if run(t, pt, f) != retMatch || run(t, pt, frame(net.HardwareAddr{0, 0, 0x5e, 0, 1, 2}, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 6)) != retPass {
		t.Fatal("PtypeProgram does not match exactly the cluster MAC")
	}
	for _, bad := range []struct {
		mac net.HardwareAddr
		n   int
	}{{mac[:5], 2}, {mac, 0}, {mac, 33}} {
		if _, err := Program(bad.mac, bad.n, 1); err == nil {
			t.Errorf("Program(%v, %d) accepted", bad.mac, bad.n)
		}
	}
}
