// Package flow is the connection-state model shared by carpd's state sync:
// what the kernel source reads from conntrack, what the wire codec carries
// and what the sink injects into the peer's conntrack table. It is pure: no
// netlink, no sockets, no clock.
//
// NAT is represented the way conntrack keeps it: by the reply tuple as the
// kernel has it after NAT. A source NAT shows as a reply destination that
// differs from the original source; a destination NAT as a reply source that
// differs from the original destination (docs/sync-protocol.md#what-ctnetlink-requires). The
// sink turns them back into CTA_NAT_SRC / CTA_NAT_DST, the only way to
// create a working NAT entry.
package flow

import (
	"fmt"
	"net/netip"
)

// IP protocol numbers carpd syncs.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

// Conntrack status bits (include/uapi/linux/netfilter/nf_conntrack_common.h,
// enum ip_conntrack_status) that sync carries.
const (
	StatusSeenReply uint32 = 1 << 1 // IPS_SEEN_REPLY
	StatusAssured   uint32 = 1 << 2 // IPS_ASSURED
	StatusConfirmed uint32 = 1 << 3 // IPS_CONFIRMED
	StatusSrcNAT    uint32 = 1 << 4 // IPS_SRC_NAT
	StatusDstNAT    uint32 = 1 << 5 // IPS_DST_NAT
	StatusOffload   uint32 = 1 << 14
)

// TCP conntrack states (enum tcp_conntrack).
const (
	TCPNone uint8 = iota
	TCPSynSent
	TCPSynRecv
	TCPEstablished
	TCPFinWait
	TCPCloseWait
	TCPLastAck
	TCPTimeWait
	TCPClose
	TCPSynSent2
)

// TCP conntrack flag bits (IP_CT_TCP_FLAG_*).
const (
	TCPFlagWindowScale uint8 = 0x01
	TCPFlagSACKPerm    uint8 = 0x02
	TCPFlagBeLiberal   uint8 = 0x08
)

// Tuple is one direction of a connection. For ICMP and ICMPv6, SrcPort is
// the echo id and DstPort is type<<8 | code, as conntrack keys them.
type Tuple struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// IsICMP reports whether the tuple is ICMP or ICMPv6, whose "ports" are
// the echo id and the type/code (conntrack's layout, see Tuple).
func (t Tuple) IsICMP() bool { return t.Proto == ProtoICMP || t.Proto == ProtoICMPv6 }

// icmpReplyType maps an ICMP or ICMPv6 query type to its reply type, as
// nf_conntrack_proto_icmp{,v6} invert tuples (echo, timestamp, info,
// address mask; echo and node information for IPv6).
var icmpReplyType = map[uint8]map[uint8]uint8{
	ProtoICMP:   {8: 0, 13: 14, 15: 16, 17: 18},
	ProtoICMPv6: {128: 129, 139: 140},
}

// Inverse returns the tuple of the other direction without NAT. For ICMP
// the id stays in SrcPort and the type becomes its reply type.
func (t Tuple) Inverse() Tuple {
	if t.IsICMP() {
		typ, code := uint8(t.DstPort>>8), uint8(t.DstPort)
		if r, ok := icmpReplyType[t.Proto][typ]; ok {
			typ = r
		}
		return Tuple{Src: t.Dst, Dst: t.Src, Proto: t.Proto, SrcPort: t.SrcPort, DstPort: uint16(typ)<<8 | uint16(code)}
	}
	return Tuple{Src: t.Dst, Dst: t.Src, Proto: t.Proto, SrcPort: t.DstPort, DstPort: t.SrcPort}
}

func (t Tuple) String() string {
	return fmt.Sprintf("%d %s:%d -> %s:%d", t.Proto, t.Src, t.SrcPort, t.Dst, t.DstPort)
}

// Key identifies a flow in a table: its original tuple and its zone.
type Key struct {
	Orig Tuple
	Zone uint16
}

// Flow is a conntrack entry as sync sees it.
type Flow struct {
	Orig  Tuple
	Reply Tuple // as the kernel has it, NAT applied
	Zone  uint16
	Mark  uint32
	// Status is the kernel's IPS_* bitfield as read; the sink keeps only
	// what a create may set and adds CONFIRMED.
	Status uint32
	// Timeout is the remaining lifetime in seconds.
	Timeout uint32
	// TCP state and per-direction window scale; zero for other protocols.
	TCPState                      uint8
	TCPWScaleOrig, TCPWScaleReply uint8
	TCPFlagsOrig, TCPFlagsReply   uint8
}

// Key returns the flow's table key.
func (f *Flow) Key() Key { return Key{Orig: f.Orig, Zone: f.Zone} }

// SNAT reports the source NAT of the flow: the address and port the
// original source is rewritten to. For ICMP the "port" is the echo id,
// which masquerading may change too.
func (f *Flow) SNAT() (addr netip.Addr, port uint16, ok bool) {
	if f.Orig.IsICMP() {
		if f.Reply.Dst == f.Orig.Src && f.Reply.SrcPort == f.Orig.SrcPort {
			return netip.Addr{}, 0, false
		}
		return f.Reply.Dst, f.Reply.SrcPort, true
	}
	if f.Reply.Dst == f.Orig.Src && f.Reply.DstPort == f.Orig.SrcPort {
		return netip.Addr{}, 0, false
	}
	return f.Reply.Dst, f.Reply.DstPort, true
}

// DNAT reports the destination NAT of the flow: the address and port the
// original destination is rewritten to (for ICMP only the address).
func (f *Flow) DNAT() (addr netip.Addr, port uint16, ok bool) {
	if f.Orig.IsICMP() {
		if f.Reply.Src == f.Orig.Dst {
			return netip.Addr{}, 0, false
		}
		return f.Reply.Src, 0, true
	}
	if f.Reply.Src == f.Orig.Dst && f.Reply.SrcPort == f.Orig.DstPort {
		return netip.Addr{}, 0, false
	}
	return f.Reply.Src, f.Reply.SrcPort, true
}

// Valid checks what a sink must check before injecting a flow from the wire:
// one address family throughout, a known protocol, no unspecified or
// multicast endpoints.
func (f *Flow) Valid() error {
	is4 := f.Orig.Src.Is4()
	for _, a := range []netip.Addr{f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst} {
		if !a.IsValid() || a.Is4() != is4 || a.Is4In6() || a.Zone() != "" {
			return fmt.Errorf("flow: mixed or invalid address %v", a)
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("flow: address %v not allowed", a)
		}
	}
	if f.Reply.Proto != f.Orig.Proto {
		return fmt.Errorf("flow: protocol %d/%d differs between directions", f.Orig.Proto, f.Reply.Proto)
	}
	switch f.Orig.Proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
	case ProtoICMP:
		if !is4 {
			return fmt.Errorf("flow: ICMP over IPv6")
		}
	case ProtoICMPv6:
		if is4 {
			return fmt.Errorf("flow: ICMPv6 over IPv4")
		}
	default:
		return fmt.Errorf("flow: protocol %d not synced", f.Orig.Proto)
	}
	if f.TCPState > TCPSynSent2 {
		return fmt.Errorf("flow: TCP state %d", f.TCPState)
	}
	return nil
}

// EventType is the kind of a kernel conntrack event.
type EventType uint8

const (
	EventNew EventType = iota + 1
	EventUpdate
	EventDestroy
	// EventOverrun: events were lost (socket overrun); the consumer must
	// resync from a dump. Flow is zero.
	EventOverrun
)

func (t EventType) String() string {
	switch t {
	case EventNew:
		return "NEW"
	case EventUpdate:
		return "UPDATE"
	case EventDestroy:
		return "DESTROY"
	case EventOverrun:
		return "OVERRUN"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one conntrack event.
type Event struct {
	Type EventType
	Flow Flow
}
