package vip

// This file is the pure codec part of the package: Ethernet II headers, ARP
// for Ethernet/IPv4 and ICMPv6 Neighbor Advertisements with their IPv6
// header. No sockets, no clock, no logging. The decoders exist so that tests
// can check what a sniffer captured; the daemon only encodes.

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
)

// Ethernet II (RFC 894) header:
//
//	0  destination MAC  [6]
//	6  source MAC       [6]
//	12 EtherType        uint16
//	14 payload
const (
	ethDstOff     = 0
	ethSrcOff     = 6
	ethTypeOff    = 12
	ethHeaderLen  = 14
	ethMinLen     = 60 // minimum frame length without the FCS; shorter frames are padded
	ethAddrLen    = 6
	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

var (
	ethBroadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ethZero      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// ethernetHeader is an Ethernet II header without 802.1Q tag (AF_PACKET
// delivers tags out of band).
type ethernetHeader struct {
	Destination net.HardwareAddr
	Source      net.HardwareAddr
	EtherType   uint16
}

// appendEthernet appends the header h to b.
func appendEthernet(b []byte, h ethernetHeader) ([]byte, error) {
	if len(h.Destination) != ethAddrLen || len(h.Source) != ethAddrLen {
		return nil, fmt.Errorf("vip: ethernet header: %w", errInvalidHardwareAddr)
	}
	b = append(b, h.Destination...)
	b = append(b, h.Source...)
	return binary.BigEndian.AppendUint16(b, h.EtherType), nil
}

// parseEthernet splits a frame into its header and payload. The payload may
// include padding up to ethMinLen.
func parseEthernet(b []byte) (ethernetHeader, []byte, error) {
	if len(b) < ethHeaderLen {
		return ethernetHeader{}, nil, io.ErrUnexpectedEOF
	}
	h := ethernetHeader{
		Destination: cloneHW(b[ethDstOff : ethDstOff+ethAddrLen]),
		Source:      cloneHW(b[ethSrcOff : ethSrcOff+ethAddrLen]),
		EtherType:   binary.BigEndian.Uint16(b[ethTypeOff:]),
	}
	return h, b[ethHeaderLen:], nil
}

// padFrame pads a frame with zeros to the Ethernet minimum. Most drivers pad
// short frames themselves, but not all (and veth does not), so we do it
// rather than depend on the driver.
func padFrame(b []byte) []byte {
	for len(b) < ethMinLen {
		b = append(b, 0)
	}
	return b
}

// arpOp is an ARP operation code (RFC 826).
type arpOp uint16

// ARP operations.
const (
	arpRequest arpOp = 1
	arpReply   arpOp = 2
)

// ARP packet for Ethernet and IPv4 (RFC 826), 28 bytes:
//
//	0  hardware type (ar_hrd)          uint16 = 1 (Ethernet)
//	2  protocol type (ar_pro)          uint16 = 0x0800 (IPv4)
//	4  hardware address length (ar_hln) uint8 = 6
//	5  protocol address length (ar_pln) uint8 = 4
//	6  operation (ar_op)               uint16
//	8  sender hardware address (ar_sha) [6]
//	14 sender protocol address (ar_spa) [4]
//	18 target hardware address (ar_tha) [6]
//	24 target protocol address (ar_tpa) [4]
const (
	arpHardwareTypeOff = 0
	arpProtocolTypeOff = 2
	arpHardwareLenOff  = 4
	arpProtocolLenOff  = 5
	arpOperationOff    = 6
	arpSenderHWOff     = 8
	arpSenderIPOff     = 14
	arpTargetHWOff     = 18
	arpTargetIPOff     = 24
	arpPacketLen       = 28

	arpHardwareEthernet = 1
	ipv4AddrLen         = 4
)

// arpPacket is an ARP packet for Ethernet hardware and IPv4 protocol
// addresses (RFC 826).
type arpPacket struct {
	Operation          arpOp
	SenderHardwareAddr net.HardwareAddr
	SenderIP           netip.Addr
	TargetHardwareAddr net.HardwareAddr
	TargetIP           netip.Addr
}

var (
	_ encoding.BinaryMarshaler   = arpPacket{}
	_ encoding.BinaryUnmarshaler = &arpPacket{}
)

// MarshalBinary implements encoding.BinaryMarshaler.
func (p arpPacket) MarshalBinary() ([]byte, error) {
	return p.appendTo(make([]byte, 0, arpPacketLen))
}

// appendTo appends the 28-byte packet to b.
func (p arpPacket) appendTo(b []byte) ([]byte, error) {
	if len(p.SenderHardwareAddr) != ethAddrLen || len(p.TargetHardwareAddr) != ethAddrLen {
		return nil, fmt.Errorf("vip: arp: %w", errInvalidHardwareAddr)
	}
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, fmt.Errorf("vip: arp: sender %v, target %v: %w", p.SenderIP, p.TargetIP, errInvalidAddr)
	}
	b = binary.BigEndian.AppendUint16(b, arpHardwareEthernet)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, ethAddrLen, ipv4AddrLen)
	b = binary.BigEndian.AppendUint16(b, uint16(p.Operation))
	b = append(b, p.SenderHardwareAddr...)
	b = append4(b, p.SenderIP)
	b = append(b, p.TargetHardwareAddr...)
	b = append4(b, p.TargetIP)
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. Bytes after the
// 28-byte packet (Ethernet padding) are ignored.
func (p *arpPacket) UnmarshalBinary(b []byte) error {
	if len(b) < arpPacketLen {
		return io.ErrUnexpectedEOF
	}
	if binary.BigEndian.Uint16(b[arpHardwareTypeOff:]) != arpHardwareEthernet ||
		binary.BigEndian.Uint16(b[arpProtocolTypeOff:]) != etherTypeIPv4 ||
		b[arpHardwareLenOff] != ethAddrLen || b[arpProtocolLenOff] != ipv4AddrLen {
		return fmt.Errorf("vip: %w: hardware type %d, protocol type %#04x, lengths %d/%d",
			errInvalidARPPacket, binary.BigEndian.Uint16(b[arpHardwareTypeOff:]),
			binary.BigEndian.Uint16(b[arpProtocolTypeOff:]), b[arpHardwareLenOff], b[arpProtocolLenOff])
	}
	*p = arpPacket{
		Operation:          arpOp(binary.BigEndian.Uint16(b[arpOperationOff:])),
		SenderHardwareAddr: cloneHW(b[arpSenderHWOff : arpSenderHWOff+ethAddrLen]),
		SenderIP:           netip.AddrFrom4([4]byte(b[arpSenderIPOff : arpSenderIPOff+ipv4AddrLen])),
		TargetHardwareAddr: cloneHW(b[arpTargetHWOff : arpTargetHWOff+ethAddrLen]),
		TargetIP:           netip.AddrFrom4([4]byte(b[arpTargetIPOff : arpTargetIPOff+ipv4AddrLen])),
	}
	return nil
}

// gratuitousARP returns the two packets of one IPv4 announcement: an ARP
// Announcement request (RFC 5227, Section 2.3: sender IP = target IP = ip,
// target hardware address zero) and a gratuitous reply (RFC 5944, Section
// 4.6: sender IP = target IP = ip and target hardware address = sender
// hardware address).
//
// The reply's target hardware address is our own MAC rather than the
// ff:ff:ff:ff:ff:ff that some implementations use: that is what RFC 5944
// prescribes, and Linux only treats a reply as gratuitous, and so lets it
// override a recently confirmed entry, when ar_tha == ar_sha (arp_is_garp in
// net/ipv4/arp.c). Both go to the Ethernet broadcast address.
func gratuitousARP(hw net.HardwareAddr, ip netip.Addr) [2]arpPacket {
	return [2]arpPacket{
		{Operation: arpRequest, SenderHardwareAddr: hw, SenderIP: ip, TargetHardwareAddr: ethZero, TargetIP: ip},
		{Operation: arpReply, SenderHardwareAddr: hw, SenderIP: ip, TargetHardwareAddr: hw, TargetIP: ip},
	}
}

// arpFrame returns p in a broadcast Ethernet frame from src, padded to the
// Ethernet minimum (14 + 28 + 18 bytes of padding).
func arpFrame(src net.HardwareAddr, p arpPacket) ([]byte, error) {
	b, err := appendEthernet(make([]byte, 0, ethMinLen),
		ethernetHeader{Destination: ethBroadcast, Source: src, EtherType: etherTypeARP})
	if err != nil {
		return nil, err
	}
	if b, err = p.appendTo(b); err != nil {
		return nil, err
	}
	return padFrame(b), nil
}

// IPv6 header (RFC 8200, Section 3), 40 bytes:
//
//	0  version (4 bits) = 6, traffic class (8 bits), flow label (20 bits)
//	4  payload length   uint16
//	6  next header      uint8 = 58 (ICMPv6)
//	7  hop limit        uint8 = 255 for Neighbor Discovery
//	8  source address   [16]
//	24 destination addr [16]
//	40 payload
//
// Neighbor Advertisement (RFC 4861, Section 4.4), 24 bytes plus options:
//
//	40 type      uint8 = 136
//	41 code      uint8 = 0
//	42 checksum  uint16, over the pseudo-header (RFC 8200, Section 8.1)
//	44 flags     R (0x80) S (0x40) O (0x20) in the first byte, then 29 reserved bits
//	48 target    [16]
//	64 options: Target Link-Layer Address (RFC 4861, Section 4.6.1)
//	64   type    uint8 = 2
//	65   length  uint8 = 1 (in units of 8 bytes)
//	66   MAC     [6]
//	72 end
const (
	ipv6VersionOff    = 0
	ipv6PayloadLenOff = 4
	ipv6NextHeaderOff = 6
	ipv6HopLimitOff   = 7
	ipv6SrcOff        = 8
	ipv6DstOff        = 24
	ipv6HeaderLen     = 40
	ipv6AddrLen       = 16
	ipv6Version       = 6

	protoICMPv6 = 58
	ndHopLimit  = 255 // RFC 4861, Section 7.1.2

	icmpTypeOff       = 0
	icmpCodeOff       = 1
	icmpChecksumOff   = 2
	naFlagsOff        = 4
	naTargetOff       = 8
	naLen             = 24 // without options
	icmpTypeNA        = 136
	naFlagRouter      = 0x80
	naFlagSolicited   = 0x40
	naFlagOverride    = 0x20
	ndOptTargetLLA    = 2
	ndOptUnit         = 8 // option lengths count 8-byte units
	ndOptTargetLLALen = 8 // type, length, 6-byte MAC
)

// ipv6AllNodes is ff02::1, the destination of unsolicited advertisements
// (RFC 4861, Section 7.2.6), and ethAllNodes its multicast MAC
// (33:33 followed by the low 32 bits, RFC 2464, Section 7).
var (
	ipv6AllNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})
	ethAllNodes  = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
)

// neighborAdvert is an ICMPv6 Neighbor Advertisement (RFC 4861, Section 4.4)
// with the IPv6 header that carries it (its addresses enter the checksum).
// The hop limit is always 255 and the only option encoded is the Target
// Link-Layer Address, omitted when TargetLinkLayerAddr is nil.
type neighborAdvert struct {
	Source, Destination netip.Addr

	Router, Solicited, Override bool
	Target                      netip.Addr
	TargetLinkLayerAddr         net.HardwareAddr
}

var (
	_ encoding.BinaryMarshaler   = neighborAdvert{}
	_ encoding.BinaryUnmarshaler = &neighborAdvert{}
)

// MarshalBinary implements encoding.BinaryMarshaler: it returns the IPv6
// packet, with a correct ICMPv6 checksum.
func (na neighborAdvert) MarshalBinary() ([]byte, error) {
	return na.appendTo(make([]byte, 0, ipv6HeaderLen+naLen+ndOptTargetLLALen))
}

// appendTo appends the IPv6 packet to b.
func (na neighborAdvert) appendTo(b []byte) ([]byte, error) {
	for _, a := range []netip.Addr{na.Source, na.Destination, na.Target} {
		if !a.Is6() || a.Is4In6() {
			return nil, fmt.Errorf("vip: neighbor advertisement: %v: %w", a, errInvalidAddr)
		}
	}
	if na.Target.IsMulticast() || (na.Solicited && na.Destination.IsMulticast()) {
		return nil, fmt.Errorf("vip: %w: target %v, solicited %v to %v",
			errInvalidNeighborAdvert, na.Target, na.Solicited, na.Destination)
	}
	payloadLen := naLen
	if na.TargetLinkLayerAddr != nil {
		if len(na.TargetLinkLayerAddr) != ethAddrLen {
			return nil, fmt.Errorf("vip: neighbor advertisement: %w", errInvalidHardwareAddr)
		}
		payloadLen += ndOptTargetLLALen
	}

	start := len(b)
	b = append(b, ipv6Version<<4, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(payloadLen))
	b = append(b, protoICMPv6, ndHopLimit)
	b = append16(b, na.Source)
	b = append16(b, na.Destination)

	icmp := len(b)
	var flags byte
	if na.Router {
		flags |= naFlagRouter
	}
	if na.Solicited {
		flags |= naFlagSolicited
	}
	if na.Override {
		flags |= naFlagOverride
	}
	b = append(b, icmpTypeNA, 0, 0, 0, flags, 0, 0, 0)
	b = append16(b, na.Target)
	if na.TargetLinkLayerAddr != nil {
		b = append(b, ndOptTargetLLA, ndOptTargetLLALen/ndOptUnit)
		b = append(b, na.TargetLinkLayerAddr...)
	}
	sum := icmpv6Checksum(b[start+ipv6SrcOff:start+ipv6SrcOff+ipv6AddrLen],
		b[start+ipv6DstOff:start+ipv6DstOff+ipv6AddrLen], b[icmp:])
	binary.BigEndian.PutUint16(b[icmp+icmpChecksumOff:], sum)
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler for an IPv6 packet.
// It applies the validity checks of RFC 4861, Section 7.1.2 that depend on
// the packet alone (hop limit, checksum, code, length, multicast target,
// solicited flag on a multicast destination, option lengths). Bytes beyond
// the IPv6 payload length are ignored. Options other than the first Target
// Link-Layer Address are skipped.
func (na *neighborAdvert) UnmarshalBinary(b []byte) error {
	if len(b) < ipv6HeaderLen {
		return io.ErrUnexpectedEOF
	}
	if v := b[ipv6VersionOff] >> 4; v != ipv6Version {
		return fmt.Errorf("vip: %w: IP version %d", errInvalidNeighborAdvert, v)
	}
	if nh := b[ipv6NextHeaderOff]; nh != protoICMPv6 {
		return fmt.Errorf("vip: %w: next header %d", errInvalidNeighborAdvert, nh)
	}
	if hl := b[ipv6HopLimitOff]; hl != ndHopLimit {
		return fmt.Errorf("vip: %w: hop limit %d", errInvalidNeighborAdvert, hl)
	}
	payloadLen := int(binary.BigEndian.Uint16(b[ipv6PayloadLenOff:]))
	if len(b)-ipv6HeaderLen < payloadLen {
		return io.ErrUnexpectedEOF
	}
	src := b[ipv6SrcOff : ipv6SrcOff+ipv6AddrLen]
	dst := b[ipv6DstOff : ipv6DstOff+ipv6AddrLen]
	m := b[ipv6HeaderLen : ipv6HeaderLen+payloadLen]
	if len(m) < naLen {
		return fmt.Errorf("vip: %w: ICMPv6 length %d", errInvalidNeighborAdvert, len(m))
	}
	if m[icmpTypeOff] != icmpTypeNA || m[icmpCodeOff] != 0 {
		return fmt.Errorf("vip: %w: ICMPv6 type %d code %d", errInvalidNeighborAdvert, m[icmpTypeOff], m[icmpCodeOff])
	}
	if icmpv6Checksum(src, dst, m) != 0 {
		// Summing a message that contains its correct checksum gives
		// 0xffff, whose complement is 0.
		return fmt.Errorf("vip: %w", errBadChecksum)
	}

	out := neighborAdvert{
		Source:      netip.AddrFrom16([16]byte(src)),
		Destination: netip.AddrFrom16([16]byte(dst)),
		Router:      m[naFlagsOff]&naFlagRouter != 0,
		Solicited:   m[naFlagsOff]&naFlagSolicited != 0,
		Override:    m[naFlagsOff]&naFlagOverride != 0,
		Target:      netip.AddrFrom16([16]byte(m[naTargetOff : naTargetOff+ipv6AddrLen])),
	}
	// The decoder accepts exactly the addresses appendTo does (an
	// IPv4-mapped target was found by FuzzNeighborAdvert).
	for _, a := range []netip.Addr{out.Source, out.Destination, out.Target} {
		if !a.Is6() || a.Is4In6() {
			return fmt.Errorf("vip: %w: address %v", errInvalidNeighborAdvert, a)
		}
	}
	if out.Target.IsMulticast() || (out.Solicited && out.Destination.IsMulticast()) {
		return fmt.Errorf("vip: %w: target %v, solicited %v to %v",
			errInvalidNeighborAdvert, out.Target, out.Solicited, out.Destination)
	}
	for opts := m[naLen:]; len(opts) > 0; {
		if len(opts) < 2 {
			return io.ErrUnexpectedEOF
		}
		n := int(opts[1]) * ndOptUnit
		if n == 0 {
			return fmt.Errorf("vip: %w: option %d has length 0", errInvalidNeighborAdvert, opts[0])
		}
		if len(opts) < n {
			return io.ErrUnexpectedEOF
		}
		if opts[0] == ndOptTargetLLA && out.TargetLinkLayerAddr == nil {
			if n != ndOptTargetLLALen {
				return fmt.Errorf("vip: %w: target link-layer address option of %d bytes",
					errInvalidNeighborAdvert, n)
			}
			out.TargetLinkLayerAddr = cloneHW(opts[2 : 2+ethAddrLen])
		}
		opts = opts[n:]
	}
	*na = out
	return nil
}

// unsolicitedNA returns the advertisement of RFC 4861, Section 7.2.6 for ip:
// to all nodes, Override set, Solicited clear, Router as given. Its source is
// ip itself, which is assigned to the interface (Section 4.4 asks only for
// that), so the packet does not depend on the link-local address.
func unsolicitedNA(hw net.HardwareAddr, ip netip.Addr, router bool) neighborAdvert {
	return neighborAdvert{
		Source:              ip,
		Destination:         ipv6AllNodes,
		Router:              router,
		Override:            true,
		Target:              ip,
		TargetLinkLayerAddr: hw,
	}
}

// naFrame returns na in an Ethernet frame from src to the multicast MAC of
// na.Destination (RFC 2464, Section 7).
func naFrame(src net.HardwareAddr, na neighborAdvert) ([]byte, error) {
	if !na.Destination.Is6() || !na.Destination.IsMulticast() {
		return nil, fmt.Errorf("vip: neighbor advertisement to %v: %w (want IPv6 multicast)",
			na.Destination, errInvalidAddr)
	}
	d := na.Destination.As16()
	dst := net.HardwareAddr{0x33, 0x33, d[12], d[13], d[14], d[15]}
	b, err := appendEthernet(make([]byte, 0, ethHeaderLen+ipv6HeaderLen+naLen+ndOptTargetLLALen),
		ethernetHeader{Destination: dst, Source: src, EtherType: etherTypeIPv6})
	if err != nil {
		return nil, err
	}
	if b, err = na.appendTo(b); err != nil {
		return nil, err
	}
	return padFrame(b), nil
}

// icmpv6Checksum returns the ICMPv6 checksum of message m (RFC 4443, Section
// 2.3): the ones' complement of the ones' complement sum over the IPv6
// pseudo-header (RFC 8200, Section 8.1)
//
//	source address [16] | destination address [16] |
//	upper-layer packet length uint32 | zero [3] | next header uint8 = 58
//
// followed by m. With m's checksum field zero it returns the value to store;
// over a message carrying a correct checksum it returns 0.
func icmpv6Checksum(src, dst, m []byte) uint16 {
	var sum uint32
	sum = onesSum(sum, src)
	sum = onesSum(sum, dst)
	sum += uint32(len(m)>>16) + uint32(len(m)&0xffff)
	sum += protoICMPv6
	sum = onesSum(sum, m)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// onesSum adds b to sum as big-endian 16-bit words, padding an odd final
// byte with zero (RFC 1071). The caller folds the carries.
func onesSum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
		if sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// append4 appends the 4 bytes of an IPv4 address (the caller checked Is4).
func append4(b []byte, a netip.Addr) []byte {
	a4 := a.As4()
	return append(b, a4[:]...)
}

// append16 appends the 16 bytes of an IPv6 address, without its zone.
func append16(b []byte, a netip.Addr) []byte {
	a16 := a.As16()
	return append(b, a16[:]...)
}

// cloneHW copies a hardware address out of a buffer the caller may reuse.
func cloneHW(b []byte) net.HardwareAddr {
	return append(net.HardwareAddr(nil), b...)
}
