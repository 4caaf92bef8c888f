package carp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestIPv6ControlMessages: the control messages a unicast IPv6 advert is
// sent with (hop limit 255, source) read back as the receive side reads
// the kernel's (hop limit, destination); without any the hop limit is -1
// (so the TTL check drops the advert), with others but no hop limit 0.
func TestIPv6ControlMessages(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	from := &net.IPAddr{IP: net.ParseIP("fe80::2"), Zone: "eth0"}
	oob := appendIPv6Cmsgs(nil, src, 7)
	if msgs, err := unix.ParseSocketControlMessage(oob); err != nil || len(msgs) != 2 || msgs[1].Header.Type != unix.IPV6_PKTINFO ||
		binary.NativeEndian.Uint32(msgs[1].Data[16:]) != 7 {
		t.Errorf("control messages %+v (%v), want hop limit and pktinfo on interface 7", msgs, err)
	}
	if len(oob) != oob6Len {
		t.Errorf("control messages are %d bytes, the receive buffer %d", len(oob), oob6Len)
	}
	p, err := parseIPv6Packet([]byte{0x21, 7}, oob, from)
	if err != nil {
		t.Fatal(err)
	}
	if p.ttl != TTL || p.dst != src || p.src != netip.MustParseAddr("fe80::2") || string(p.payload) != "\x21\x07" {
		t.Errorf("parsed %+v", p)
	}
	if p, err := parseIPv6Packet([]byte{1}, nil, from); err != nil || p.ttl != -1 || p.dst.IsValid() {
		t.Errorf("without control messages: %+v, %v", p, err)
	}
	pktinfo := appendCmsg(nil, unix.IPV6_PKTINFO, make([]byte, unix.SizeofInet6Pktinfo))
	if p, err := parseIPv6Packet([]byte{1}, pktinfo, from); err != nil || p.ttl != 0 {
		t.Errorf("without a hop limit: %+v, %v", p, err)
	}
	bad := append([]byte(nil), oob...)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(len(bad) + 1)
	if _, err := parseIPv6Packet([]byte{1}, bad, from); err == nil {
		t.Error("a control message longer than the buffer parsed")
	}
}

func TestCheckIPv4Header(t *testing.T) {
	hdr := make([]byte, 24)
	for _, c := range []struct {
		b  []byte
		ok bool
	}{
		{append([]byte{0x45}, hdr[1:20]...), true},
		{append([]byte{0x46}, hdr[1:24]...), true},
		{append([]byte{0x45}, hdr[1:19]...), false}, // shorter than 20
		{append([]byte{0x44}, hdr[1:20]...), false}, // IHL below 5
		{append([]byte{0x46}, hdr[1:22]...), false}, // options cut off
		{nil, false},
	} {
		if err := checkIPv4Header(c.b); (err == nil) != c.ok || err != nil && !errors.Is(err, errShortHeader) {
			t.Errorf("% x: %v", c.b, err)
		}
	}
}
