package balance

import (
	"encoding/binary"
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
