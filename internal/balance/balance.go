// Package balance is the per-packet half of active-active CARP load
// balancing (OpenBSD's carpnodes and `balancing ip | ip-stealth |
// ip-unicast`): which router of a cluster forwards a packet sent to the
// cluster's shared MAC, decided in the kernel's datapath.
//
// A balanced virtual host has N nodes, each an ordinary CARP instance with
// its own vhid and election. Sorted by vhid, node i is bit i of the owned
// mask: the bit is set while this router is master of that node. A packet
// belongs to node
//
//	index = fold(src, dst) mod N
//
// where fold is the XOR of the source and destination address read as
// big-endian 32-bit words (IPv4: the two addresses; IPv6: all eight words of
// both). There is no seed, so both directions of a flow fold to the same
// node and OpenBSD routers and carpd routers of one cluster agree on every
// packet. A router accepts a packet only when it owns its node; packets that
// are not IP, ICMP and ICMPv6 (OpenBSD leaves them to every node), CARP,
// and multicast or broadcast packets always pass.
//
// The pure rule is [Index], [Mask] and [Accept]. [Program] compiles it
// into a small eBPF program for the ingress hook (a tcx link on Linux 6.6
// and later, a cls_bpf filter in direct-action mode before) that reads the
// owned mask from a one-entry BPF map; on Linux, [Open] installs it on an
// interface as a [Datapath] and [Datapath.SetMask] changes the mask with
// one bpf(2) call. docs/balancing.md explains the choice and what the
// kernel needs.
package balance

import (
	"encoding/binary"
	"net/netip"
)

// MaxNodes is the most nodes a balanced virtual host may have: the owned
// mask is 32 bits, as on OpenBSD.
const MaxNodes = 32

// Protocol numbers that always pass the rule.
const (
	protoICMP   = 1
	protoICMPv6 = 58
	protoCARP   = 112
)

// Fold returns the XOR of src and dst as big-endian 32-bit words: for IPv4
// the two addresses, for IPv6 all four words of each. An IPv4-mapped IPv6
// address is folded as IPv6, as it is on the wire. ok is false when the two
// families differ or an address is invalid.
func Fold(src, dst netip.Addr) (fold uint32, ok bool) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return 0, false
	}
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		return binary.BigEndian.Uint32(s[:]) ^ binary.BigEndian.Uint32(d[:]), true
	}
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 4 {
		fold ^= binary.BigEndian.Uint32(s[i:]) ^ binary.BigEndian.Uint32(d[i:])
	}
	return fold, true
}

// Index returns the node, 0 ≤ index < n, that owns packets between src
// and dst, and false for a mixed or invalid pair or n outside 1..MaxNodes.
func Index(src, dst netip.Addr, n int) (int, bool) {
	fold, ok := Fold(src, dst)
	if !ok || n < 1 || n > MaxNodes {
		return 0, false
	}
	return int(fold % uint32(n)), true
}

// Mask returns the owned mask for the nodes' states in vhid order: bit i is
// set when master[i] is true. Nodes past MaxNodes are ignored.
func Mask(master []bool) uint32 {
	var m uint32
	for i, ok := range master {
		if ok && i < MaxNodes {
			m |= 1 << uint(i)
		}
	}
	return m
}

// Owns reports whether mask has node index.
func Owns(mask uint32, index int) bool {
	return index >= 0 && index < MaxNodes && mask&(1<<uint(index)) != 0
}

// Accept is the whole rule for one IP packet that arrived addressed to the
// cluster's MAC: proto is the IPv4 protocol or the IPv6 next header, mask
// and n the owned mask and node count. It reports whether this router
// handles the packet. The BPF program of [Program] decides the same way.
func Accept(src, dst netip.Addr, proto uint8, mask uint32, n int) bool {
	switch {
	case proto == protoICMP && dst.Is4(), proto == protoICMPv6 && dst.Is6():
		return true // OpenBSD's ip_input and ip6_input exempt ICMP
	case proto == protoCARP:
		return true
	case multicastOrBroadcast(dst):
		return true
	}
	idx, ok := Index(src, dst, n)
	if !ok {
		return false
	}
	return Owns(mask, idx)
}

// multicastOrBroadcast: IPv4 224.0.0.0 and above (multicast, the reserved
// class E and the limited broadcast), IPv6 ff00::/8.
func multicastOrBroadcast(a netip.Addr) bool {
	if a.Is4() {
		return a.As4()[0] >= 224
	}
	return a.As16()[0] == 0xff
}
