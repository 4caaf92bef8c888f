package carp

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
)

// bsdKernelAddr is an address as a BSD kernel stores it on an interface:
// KAME's in-kernel form of a link-local (or link- or interface-local
// multicast) address carries the interface index in bytes 2-3.
func bsdKernelAddr(s string, ifindex uint16) [16]byte {
	a := netip.MustParseAddr(s).As16()
	if bsdScopeEmbed(a) {
		binary.BigEndian.PutUint16(a[2:], ifindex)
	}
	return a
}

// bsdScopeEmbed is IN6_IS_SCOPE_EMBED: link-local unicast (fe80::/10),
// link-local and interface-local multicast.
func bsdScopeEmbed(a [16]byte) bool {
	return a[0] == 0xfe && a[1]&0xc0 == 0x80 ||
		a[0] == 0xff && (a[1]&0x0f == 0x02 || a[1]&0x0f == 0x01)
}

// bsdHMAC is an independent model of carp_hmac_prepare_ctx and
// carp_hmac_generate of OpenBSD's and FreeBSD's ip_carp.c, written from the
// algorithm and not from carpd's code: the key in a 64-byte pad (ipad,
// opad), version and type and vhid, then the IPv4 and the IPv6 addresses in
// ascending order by repeated selection of the smallest one above the last
// (so duplicates and the all-zero and all-ones addresses drop out), with the
// embedded scope of link-local addresses cleared before comparing; the
// NOV6LL context (withLL false) skips those addresses. Then the counter.
func bsdHMAC(key string, vhid uint8, v4 [][4]byte, v6 [][16]byte, withLL bool, counter uint64) [20]byte {
	var pad [64]byte
	k := []byte(key)
	if len(k) > KeyLen-1 {
		k = k[:KeyLen-1]
	}
	copy(pad[:], k)
	for i := range pad {
		pad[i] ^= 0x36
	}
	in := sha1.New()
	in.Write(pad[:])
	in.Write([]byte{2, 1, vhid})
	last := uint32(0)
	for {
		cur, found := uint32(0xffffffff), false
		for _, a := range v4 {
			if n := binary.BigEndian.Uint32(a[:]); n > last && n < cur {
				cur, found = n, true
			}
		}
		if !found {
			break
		}
		in.Write(binary.BigEndian.AppendUint32(nil, cur))
		last = cur
	}
	var last6 [16]byte
	for {
		var cur6 [16]byte
		for i := range cur6 {
			cur6[i] = 0xff
		}
		found := false
		for _, a := range v6 {
			if bsdScopeEmbed(a) {
				if !withLL {
					continue
				}
				a[2], a[3] = 0, 0
			}
			if bytes.Compare(a[:], last6[:]) > 0 && bytes.Compare(a[:], cur6[:]) < 0 {
				cur6, found = a, true
			}
		}
		if !found {
			break
		}
		in.Write(cur6[:])
		last6 = cur6
	}
	in.Write(binary.BigEndian.AppendUint64(nil, counter))
	md := in.Sum(nil)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	out := sha1.New()
	out.Write(pad[:])
	out.Write(md)
	var r [20]byte
	out.Sum(r[:0])
	return r
}

func v4s(ss ...string) [][4]byte {
	var out [][4]byte
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s).As4())
	}
	return out
}

// TestAuthLinkLocalBSD checks carpd's HMAC against the BSD model for vhids
// with link-local VIPs: carpd sends what OpenBSD sends (NOV6LL) and accepts
// what FreeBSD sends (link-local included, scope cleared), whatever interface
// index the BSD kernel embedded and whatever the VIP's bytes 2-3 say.
func TestAuthLinkLocalBSD(t *testing.T) {
	const ctr = 0x0102030405060708
	tests := []struct {
		name   string
		config []string // carpd's VIPs, as configured
		v4     []string
		v6     []string // the same VIPs, as the BSD kernel holds them
		ifidx  uint16
	}{
		{"one link-local", []string{"fe80::1"}, nil, []string{"fe80::1"}, 3},
		{"link-local with zone, global, IPv4", []string{"fe80::1%lan", "2001:db8::1", "10.0.0.1"},
			[]string{"10.0.0.1"}, []string{"2001:db8::1", "fe80::1"}, 2},
		{"same VIP, other interface index", []string{"fe80::1%lan2", "2001:db8::1", "10.0.0.1"},
			[]string{"10.0.0.1"}, []string{"2001:db8::1", "fe80::1"}, 7},
		// Bytes 2-3 are the scope on a BSD: fe80:1234::1 configured there is
		// fe80:<index>::1 in the kernel and hashes as fe80::1.
		{"bytes 2-3 set", []string{"fe80:1234::1"}, nil, []string{"fe80::1"}, 4},
		// fe80:1::1 sorts after fe80::2 as written, before it once cleared.
		{"order after clearing", []string{"fe80::2", "fe80:1::1", "fd00::9"}, nil, []string{"fe80::2", "fe80::1", "fd00::9"}, 5},
		// fe80::1 and fe80:9::1 are one address once cleared.
		{"duplicate after clearing", []string{"fe80::1", "fe80:9::1", "fe80::2"}, nil, []string{"fe80::1", "fe80::2"}, 6},
		{"site-local fec0::/10 is not link-local", []string{"fec0::1", "fe80::1"}, nil, []string{"fec0::1", "fe80::1"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []netip.Addr
			for _, s := range tt.config {
				addrs = append(addrs, netip.MustParseAddr(s))
			}
			var kern [][16]byte
			for _, s := range tt.v6 {
				kern = append(kern, bsdKernelAddr(s, tt.ifidx))
			}
			au := NewAuth("secret", 1, addrs)
			openbsd := bsdHMAC("secret", 1, v4s(tt.v4...), kern, false, ctr)
			freebsd := bsdHMAC("secret", 1, v4s(tt.v4...), kern, true, ctr)
			if got := au.Sum(ctr); got != openbsd {
				t.Errorf("Sum = %x, OpenBSD sends %x", got, openbsd)
			}
			if !au.Verify(ctr, openbsd) {
				t.Error("the OpenBSD (NOV6LL) HMAC is refused")
			}
			if !au.Verify(ctr, freebsd) {
				t.Errorf("the FreeBSD HMAC (link-local included) %x is refused", freebsd)
			}
			wrong := bsdHMAC("secret", 1, v4s(tt.v4...), append(kern, bsdKernelAddr("fe80::abcd", tt.ifidx)), true, ctr)
			if au.Verify(ctr, wrong) {
				t.Error("an HMAC over another link-local set is accepted")
			}
		})
	}
}

// TestAuthLinkLocalVectors pins two digests computed outside Go (Python's
// hmac module over the message bytes written out by hand), for a vhid whose
// only VIP is fe80::1: sent, the message is 02 01 01 + counter; the FreeBSD
// variant is 02 01 01 fe80::1 + counter.
func TestAuthLinkLocalVectors(t *testing.T) {
	au := NewAuth("secret", 1, []netip.Addr{netip.MustParseAddr("fe80::1%eth0")})
	const ctr = 0x0102030405060708
	if got := au.Sum(ctr); hex.EncodeToString(got[:]) != "9fe1fb2357052d833ee9de4754411d9e54da3ddf" {
		t.Errorf("Sum = %x", got)
	}
	var ll [20]byte
	hex.Decode(ll[:], []byte("d3e567cb76d5fc087e6ebc266a2475fb30d3998d"))
	if !au.Verify(ctr, ll) {
		t.Error("FreeBSD variant refused")
	}
	// The model agrees with the pinned digests.
	if m := bsdHMAC("secret", 1, nil, [][16]byte{bsdKernelAddr("fe80::1", 9)}, true, ctr); m != ll {
		t.Errorf("model %x", m)
	}
}
