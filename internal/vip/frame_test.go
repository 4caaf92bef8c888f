package vip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Test fixtures: a locally administered MAC and documentation addresses.
var (
	testMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	testV4  = netip.MustParseAddr("192.0.2.10")
	testV6  = netip.MustParseAddr("2001:db8::10")
)

// addrComparer lets cmp compare netip.Addr (unexported fields) by value.
var addrComparer = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// Golden frames, written out by hand from RFC 826 and RFC 4861 rather than
// produced by the code under test.
var (
	goldenARPRequest = concat(
		// Ethernet: broadcast, from testMAC, EtherType ARP.
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		[]byte{0x08, 0x06},
		// ARP: Ethernet, IPv4, 6, 4, request.
		[]byte{0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01},
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, // sender MAC
		[]byte{192, 0, 2, 10},                      // sender IP
		[]byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, // target MAC: zero (RFC 5227)
		[]byte{192, 0, 2, 10},                      // target IP
		make([]byte, 18),                           // padding to 60 bytes
	)
	goldenARPReply = concat(
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		[]byte{0x08, 0x06},
		// ARP: Ethernet, IPv4, 6, 4, reply.
		[]byte{0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02},
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, // sender MAC
		[]byte{192, 0, 2, 10},                      // sender IP
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, // target MAC = sender MAC (RFC 5944)
		[]byte{192, 0, 2, 10},                      // target IP
		make([]byte, 18),
	)
	// The checksum 0xf90c was summed by hand, in 16-bit words:
	//   pseudo-header: src 2001+0db8+0010=2dc9, dst ff02+0001=ff03,
	//                  length 0020, next header 003a
	//   message: 8800, 0000 (checksum), 2000 (O flag), 0000,
	//            target 2dc9, option 0201 0200 0000 0001
	//   total 0x206f1, folded 0x06f1+0x2 = 0x06f3, complement 0xf90c.
	// TestNeighborAdvertCrossCheck recomputes it with golang.org/x/net/icmp.
	goldenNA = concat(
		// Ethernet: 33:33:00:00:00:01, from testMAC, EtherType IPv6.
		[]byte{0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
		[]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		[]byte{0x86, 0xdd},
		// IPv6: version 6, payload 32, ICMPv6, hop limit 255.
		[]byte{0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff},
		[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, // src 2001:db8::10
		[]byte{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01},       // dst ff02::1
		// ICMPv6: type 136, code 0, checksum, flags O.
		[]byte{0x88, 0x00, 0xf9, 0x0c, 0x20, 0x00, 0x00, 0x00},
		[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, // target
		// Target Link-Layer Address option: type 2, length 1 (8 bytes).
		[]byte{0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
	)
)

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestARPFramesGolden(t *testing.T) {
	ps := gratuitousARP(testMAC, testV4)
	for i, want := range [][]byte{goldenARPRequest, goldenARPReply} {
		got, err := arpFrame(testMAC, ps[i])
		if err != nil {
			t.Fatalf("arpFrame(%d): %v", i, err)
		}
		if len(got) != ethMinLen {
			t.Errorf("frame %d is %d bytes, want %d", i, len(got), ethMinLen)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i, diff)
		}

		// And back.
		h, payload, err := parseEthernet(got)
		if err != nil {
			t.Fatal(err)
		}
		wantH := ethernetHeader{Destination: ethBroadcast, Source: testMAC, EtherType: etherTypeARP}
		if diff := cmp.Diff(wantH, h); diff != "" {
			t.Errorf("header %d (-want +got):\n%s", i, diff)
		}
		var p arpPacket
		if err := p.UnmarshalBinary(payload); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ps[i], p, addrComparer); diff != "" {
			t.Errorf("packet %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestNeighborAdvertGolden(t *testing.T) {
	got, err := naFrame(testMAC, unsolicitedNA(testMAC, testV6, false))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(goldenNA, got); diff != "" {
		t.Errorf("frame (-want +got):\n%s", diff)
	}

	h, payload, err := parseEthernet(got)
	if err != nil {
		t.Fatal(err)
	}
	if h.EtherType != etherTypeIPv6 || !bytes.Equal(h.Destination, ethAllNodes) {
		t.Errorf("header = %+v", h)
	}
	var na neighborAdvert
	if err := na.UnmarshalBinary(payload); err != nil {
		t.Fatal(err)
	}
	want := neighborAdvert{Source: testV6, Destination: ipv6AllNodes, Override: true,
		Target: testV6, TargetLinkLayerAddr: testMAC}
	if diff := cmp.Diff(want, na, addrComparer); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// TestNeighborAdvertCrossCheck checks our encoding against golang.org/x/net:
// icmp.ParseMessage must see a Neighbor Advertisement, and icmp's own
// checksum (computed by Marshal with the IPv6 pseudo-header) must equal ours,
// with and without the Router flag.
func TestNeighborAdvertCrossCheck(t *testing.T) {
	for _, router := range []bool{false, true} {
		b, err := unsolicitedNA(testMAC, testV6, router).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		m := b[ipv6HeaderLen:]

		msg, err := icmp.ParseMessage(protoICMPv6, m)
		if err != nil {
			t.Fatalf("router=%v: icmp.ParseMessage: %v", router, err)
		}
		if msg.Type != ipv6.ICMPTypeNeighborAdvertisement || msg.Code != 0 {
			t.Errorf("router=%v: parsed type %v code %d", router, msg.Type, msg.Code)
		}
		if got, want := int(binary.BigEndian.Uint16(m[icmpChecksumOff:])), msg.Checksum; got != want {
			t.Errorf("router=%v: checksum field %#04x, icmp parsed %#04x", router, got, want)
		}

		// Re-marshal the body with x/net, which computes the checksum.
		body := &icmp.RawBody{Data: append([]byte(nil), m[naFlagsOff:]...)}
		xb, err := (&icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: body}).
			Marshal(icmp.IPv6PseudoHeader(testV6.AsSlice(), ipv6AllNodes.AsSlice()))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(xb, m); diff != "" {
			t.Errorf("router=%v: x/net/icmp (-want) vs ours (+got):\n%s", router, diff)
		}

		wantFlags := byte(naFlagOverride)
		if router {
			wantFlags |= naFlagRouter
		}
		if m[naFlagsOff] != wantFlags {
			t.Errorf("router=%v: flags %#02x, want %#02x", router, m[naFlagsOff], wantFlags)
		}
	}
}

func TestARPUnmarshalErrors(t *testing.T) {
	good := goldenARPRequest[ethHeaderLen : ethHeaderLen+arpPacketLen]
	mut := func(off int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[off] = v
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"truncated", good[:arpPacketLen-1], io.ErrUnexpectedEOF},
		{"hardware type", mut(arpHardwareTypeOff+1, 6), errInvalidARPPacket},
		{"protocol type", mut(arpProtocolTypeOff, 0x86), errInvalidARPPacket},
		{"hardware length", mut(arpHardwareLenOff, 8), errInvalidARPPacket},
		{"protocol length", mut(arpProtocolLenOff, 16), errInvalidARPPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p arpPacket
			if err := p.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalBinary = %v, want %v", err, tt.want)
			}
		})
	}
}

// fixChecksum recomputes the ICMPv6 checksum of IPv6 packet b in place, over
// the payload length its header states. It leaves b alone if b is too short
// for that.
func fixChecksum(b []byte) []byte {
	if len(b) < ipv6HeaderLen {
		return b
	}
	n := int(binary.BigEndian.Uint16(b[ipv6PayloadLenOff:]))
	if n < icmpChecksumOff+2 || len(b)-ipv6HeaderLen < n {
		return b
	}
	m := b[ipv6HeaderLen : ipv6HeaderLen+n]
	m[icmpChecksumOff], m[icmpChecksumOff+1] = 0, 0
	binary.BigEndian.PutUint16(m[icmpChecksumOff:],
		icmpv6Checksum(b[ipv6SrcOff:ipv6SrcOff+ipv6AddrLen], b[ipv6DstOff:ipv6DstOff+ipv6AddrLen], m))
	return b
}

func TestNeighborAdvertUnmarshalErrors(t *testing.T) {
	good := goldenNA[ethHeaderLen:]
	// mut changes one byte and, if fixSum, repairs the checksum so that
	// the case reaches the check it is aimed at.
	mut := func(off int, v byte, fixSum bool) []byte {
		b := append([]byte(nil), good...)
		b[off] = v
		if fixSum {
			fixChecksum(b)
		}
		return b
	}
	// bigLLA has a 16-byte Target Link-Layer Address option: not Ethernet.
	bigLLA := append(append([]byte(nil), good...), make([]byte, 8)...)
	bigLLA[ipv6PayloadLenOff+1] += 8
	bigLLA[ipv6HeaderLen+naLen+1] = 2
	fixChecksum(bigLLA)

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short header", good[:ipv6HeaderLen-1], io.ErrUnexpectedEOF},
		{"short payload", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"version 4", mut(ipv6VersionOff, 0x40, true), errInvalidNeighborAdvert},
		{"next header", mut(ipv6NextHeaderOff, 17, true), errInvalidNeighborAdvert},
		{"hop limit", mut(ipv6HopLimitOff, 64, true), errInvalidNeighborAdvert},
		{"payload too short", mut(ipv6PayloadLenOff+1, naLen-1, false), errInvalidNeighborAdvert},
		{"type", mut(ipv6HeaderLen+icmpTypeOff, 135, true), errInvalidNeighborAdvert},
		{"code", mut(ipv6HeaderLen+icmpCodeOff, 1, true), errInvalidNeighborAdvert},
		{"checksum", mut(ipv6HeaderLen+icmpChecksumOff, 0, false), errBadChecksum},
		{"multicast target", mut(ipv6HeaderLen+naTargetOff, 0xff, true), errInvalidNeighborAdvert},
		{"solicited to multicast", mut(ipv6HeaderLen+naFlagsOff, naFlagSolicited, true), errInvalidNeighborAdvert},
		{"zero-length option", mut(ipv6HeaderLen+naLen+1, 0, true), errInvalidNeighborAdvert},
		{"option beyond payload", mut(ipv6HeaderLen+naLen+1, 2, true), io.ErrUnexpectedEOF},
		{"16-byte link-layer address", bigLLA, errInvalidNeighborAdvert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var na neighborAdvert
			if err := na.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalBinary = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNeighborAdvertOptions checks that unknown options are skipped, that a
// packet without options decodes with a nil link-layer address, and that
// Ethernet-style trailing bytes beyond the payload length are ignored.
func TestNeighborAdvertOptions(t *testing.T) {
	bare := neighborAdvert{Source: testV6, Destination: ipv6AllNodes, Override: true, Target: testV6}
	b, err := bare.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != ipv6HeaderLen+naLen {
		t.Fatalf("no-option NA is %d bytes", len(b))
	}
	var got neighborAdvert
	if err := got.UnmarshalBinary(append(b, 0xde, 0xad)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bare, got, addrComparer); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A nonce option (type 14, RFC 3971) before the link-layer address.
	full := unsolicitedNA(testMAC, testV6, true)
	fb, err := full.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	withNonce := concat(fb[:ipv6HeaderLen+naLen], []byte{14, 1, 1, 2, 3, 4, 5, 6}, fb[ipv6HeaderLen+naLen:])
	binary.BigEndian.PutUint16(withNonce[ipv6PayloadLenOff:], naLen+16)
	fixChecksum(withNonce)
	got = neighborAdvert{}
	if err := got.UnmarshalBinary(withNonce); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, got, addrComparer); diff != "" {
		t.Errorf("with nonce (-want +got):\n%s", diff)
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func() error
		want error
	}{
		{"arp short MAC", func() error {
			_, err := arpPacket{SenderHardwareAddr: testMAC[:4], TargetHardwareAddr: testMAC, SenderIP: testV4, TargetIP: testV4}.MarshalBinary()
			return err
		}, errInvalidHardwareAddr},
		{"arp IPv6", func() error {
			_, err := arpPacket{SenderHardwareAddr: testMAC, TargetHardwareAddr: testMAC, SenderIP: testV6, TargetIP: testV4}.MarshalBinary()
			return err
		}, errInvalidAddr},
		{"arp zero IP", func() error {
			_, err := arpPacket{SenderHardwareAddr: testMAC, TargetHardwareAddr: testMAC, TargetIP: testV4}.MarshalBinary()
			return err
		}, errInvalidAddr},
		{"na IPv4 target", func() error {
			_, err := unsolicitedNA(testMAC, testV4, false).MarshalBinary()
			return err
		}, errInvalidAddr},
		{"na IPv4-mapped target", func() error {
			_, err := unsolicitedNA(testMAC, netip.AddrFrom16(testV4.As16()), false).MarshalBinary()
			return err
		}, errInvalidAddr},
		{"na multicast target", func() error {
			_, err := unsolicitedNA(testMAC, ipv6AllNodes, false).MarshalBinary()
			return err
		}, errInvalidNeighborAdvert},
		{"na solicited to multicast", func() error {
			na := unsolicitedNA(testMAC, testV6, false)
			na.Solicited = true
			_, err := na.MarshalBinary()
			return err
		}, errInvalidNeighborAdvert},
		{"na long MAC", func() error {
			_, err := unsolicitedNA(append(testMAC, 0, 0), testV6, false).MarshalBinary()
			return err
		}, errInvalidHardwareAddr},
		{"na frame to unicast", func() error {
			na := unsolicitedNA(testMAC, testV6, false)
			na.Destination = testV6
			_, err := naFrame(testMAC, na)
			return err
		}, errInvalidAddr},
		{"ethernet short source", func() error {
			_, err := arpFrame(testMAC[:5], gratuitousARP(testMAC, testV4)[0])
			return err
		}, errInvalidHardwareAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseEthernetShort(t *testing.T) {
	if _, _, err := parseEthernet(make([]byte, ethHeaderLen-1)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v", err)
	}
}

// TestChecksumOddLength covers the odd-byte rule of RFC 1071, which NAs never
// exercise: the sum of 0x01 alone is 0x0100.
func TestChecksumOddLength(t *testing.T) {
	if got := onesSum(0, []byte{0x01}); got != 0x0100 {
		t.Errorf("onesSum = %#x", got)
	}
	if got := onesSum(0, []byte{0xff, 0xff, 0x00, 0x02}); got != 0x0002 {
		// 0xffff + 0x0002 = 0x10001, folded 0x0002
		t.Errorf("onesSum with carry = %#x", got)
	}
}

func TestCheckInterfaceName(t *testing.T) {
	for name, ok := range map[string]bool{
		"eth0": true, "br-lan": true, "eth0.10": true, "123456789012345": true,
		"": false, "1234567890123456": false, "a/b": false, "a b": false, "a:1": false, ".": false, "..": false,
	} {
		if err := checkInterfaceName(name); (err == nil) != ok {
			t.Errorf("checkInterfaceName(%q) = %v", name, err)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for s, ok := range map[string]bool{
		"192.0.2.1": true, "2001:db8::1": true, "fe80::1%eth0": true,
		"0.0.0.0": false, "::": false, "224.0.0.18": false, "ff02::12": false,
		"255.255.255.255": false, "::ffff:192.0.2.1": false,
	} {
		if err := checkAddr(netip.MustParseAddr(s)); (err == nil) != ok {
			t.Errorf("checkAddr(%s) = %v", s, err)
		}
	}
	if err := checkAddr(netip.Addr{}); !errors.Is(err, errInvalidAddr) {
		t.Errorf("checkAddr(zero) = %v", err)
	}
}

func TestLinkEventString(t *testing.T) {
	if got, want := (LinkEvent{Name: "eth0", Index: 2, Up: true}).String(), "eth0(2) up"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
