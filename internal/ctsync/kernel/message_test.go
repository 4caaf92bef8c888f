package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
	"github.com/google/go-cmp/cmp"
)

// attrTree decodes netfilter attributes into a map from type paths
// ("1/2/3": CTA_TUPLE_ORIG / CTA_TUPLE_PROTO / CTA_PROTO_DST_PORT) to
// payloads, descending into attributes that carry NLA_F_NESTED. It fails on
// a type that appears twice at one level.
func attrTree(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	var walk func(prefix string, b []byte)
	walk = func(prefix string, b []byte) {
		ad := nl.NewAttributeDecoder(b)
		for ad.Next() {
			path := fmt.Sprint(ad.Type())
			if prefix != "" {
				path = prefix + "/" + path
			}
			if _, dup := out[path]; dup {
				t.Fatalf("attribute %s twice", path)
			}
			if ad.TypeFlags()&nl.Nested != 0 {
				out[path] = nil
				walk(path, ad.Bytes())
				continue
			}
			out[path] = ad.Bytes()
		}
		if err := ad.Err(); err != nil {
			t.Fatalf("%s: %v", prefix, err)
		}
	}
	walk("", b)
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func a(s string) []byte    { return netip.MustParseAddr(s).AsSlice() }

// checkHeader checks a ctnetlink request's headers and returns its
// attributes.
func checkHeader(t *testing.T, m nl.Message, msgType uint8, flags nl.HeaderFlags, fam uint8) map[string][]byte {
	t.Helper()
	if want := nl.HeaderType(1<<8 | uint16(msgType)); m.Header.Type != want {
		t.Errorf("type %#x, want %#x", uint16(m.Header.Type), uint16(want))
	}
	if m.Header.Flags != flags {
		t.Errorf("flags %v, want %v", m.Header.Flags, flags)
	}
	if len(m.Data) < nfgenmsgLen {
		t.Fatalf("no nfgenmsg")
	}
	if got := m.Data[:nfgenmsgLen]; !cmp.Equal(got, []byte{fam, 0, 0, 0}) {
		t.Errorf("nfgenmsg % x, want family %d, version 0, res_id 0", got, fam)
	}
	return attrTree(t, m.Data[nfgenmsgLen:])
}

// tupleAttrs returns the expected attributes of a tuple under prefix.
func tupleAttrs(prefix string, src, dst string, proto uint8, sport, dport uint16) map[string][]byte {
	m := map[string][]byte{prefix: nil, prefix + "/1": nil, prefix + "/2": nil}
	srcIP, dstIP := "1", "2"
	if netip.MustParseAddr(src).Is6() {
		srcIP, dstIP = "3", "4"
	}
	m[prefix+"/1/"+srcIP] = a(src)
	m[prefix+"/1/"+dstIP] = a(dst)
	m[prefix+"/2/1"] = []byte{proto}
	switch proto {
	case flow.ProtoICMP: // type, code, id
		m[prefix+"/2/5"] = []byte{byte(dport >> 8)}
		m[prefix+"/2/6"] = []byte{byte(dport)}
		m[prefix+"/2/4"] = be16(sport)
	case flow.ProtoICMPv6:
		m[prefix+"/2/8"] = []byte{byte(dport >> 8)}
		m[prefix+"/2/9"] = []byte{byte(dport)}
		m[prefix+"/2/7"] = be16(sport)
	default:
		m[prefix+"/2/2"] = be16(sport)
		m[prefix+"/2/3"] = be16(dport)
	}
	return m
}

// merge merges attribute maps.
func merge(ms ...map[string][]byte) map[string][]byte {
	out := make(map[string][]byte)
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func tuple(src string, sport uint16, dst string, dport uint16, proto uint8) flow.Tuple {
	return flow.Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto, SrcPort: sport, DstPort: dport}
}

func TestCreateMessage(t *testing.T) {
	established := func(f flow.Flow) flow.Flow {
		f.Status = flow.StatusSeenReply | flow.StatusAssured
		f.Timeout = 300
		return f
	}
	// The fixed attributes of an established flow: CONFIRMED|SEEN_REPLY|
	// ASSURED, timeout 300, mark 0.
	common := map[string][]byte{"3": be32(0x0e), "7": be32(300), "8": be32(0)}
	tcpInfo := func(state, wsOrig, wsReply, flagsOrig, flagsReply uint8) map[string][]byte {
		return map[string][]byte{
			"4": nil, "4/1": nil,
			"4/1/1": {state}, "4/1/2": {wsOrig}, "4/1/3": {wsReply},
			"4/1/4": {flagsOrig, flagsOrig}, "4/1/5": {flagsReply, flagsReply},
		}
	}
	tests := []struct {
		name string
		f    flow.Flow
		fam  uint8
		want map[string][]byte
	}{
		{
			name: "tcp masquerade with port change, zone, mark",
			f: flow.Flow{
				Orig:           tuple("192.168.1.10", 40000, "198.51.100.7", 443, 6),
				Reply:          tuple("198.51.100.7", 443, "203.0.113.1", 61000, 6),
				Zone:           5,
				Mark:           42,
				Status:         flow.StatusSeenReply | flow.StatusAssured | flow.StatusSrcNAT | 0x180, // NAT bits are dropped
				Timeout:        300,
				TCPState:       flow.TCPEstablished,
				TCPWScaleOrig:  7,
				TCPWScaleReply: 2,
				TCPFlagsOrig:   flow.TCPFlagWindowScale | flow.TCPFlagSACKPerm | 0x20, // MAXACK_SET is not copied
				TCPFlagsReply:  flow.TCPFlagWindowScale,
			},
			fam: afInet,
			want: merge(
				tupleAttrs("1", "192.168.1.10", "198.51.100.7", 6, 40000, 443),
				// The reply tuple without NAT.
				tupleAttrs("2", "198.51.100.7", "192.168.1.10", 6, 443, 40000),
				map[string][]byte{
					"6": nil, "6/1": a("203.0.113.1"), "6/2": a("203.0.113.1"),
					"6/3": nil, "6/3/1": be16(61000), "6/3/2": be16(61000),
					"3": be32(0x0e), "7": be32(300), "8": be32(42), "18": be16(5),
				},
				// BE_LIBERAL both ways, with the handshake bits the
				// primary saw, in flags and mask.
				tcpInfo(flow.TCPEstablished, 7, 2, 0x0b, 0x09),
			),
		},
		{
			name: "tcp port forward",
			f: established(flow.Flow{
				Orig:  tuple("198.51.100.7", 50000, "203.0.113.1", 8080, 6),
				Reply: tuple("192.168.1.20", 80, "198.51.100.7", 50000, 6),
			}),
			fam: afInet,
			want: merge(
				tupleAttrs("1", "198.51.100.7", "203.0.113.1", 6, 50000, 8080),
				tupleAttrs("2", "203.0.113.1", "198.51.100.7", 6, 8080, 50000),
				map[string][]byte{
					"13": nil, "13/1": a("192.168.1.20"), "13/2": a("192.168.1.20"),
					"13/3": nil, "13/3/1": be16(80), "13/3/2": be16(80),
				},
				common,
				tcpInfo(0, 0, 0, 0x08, 0x08),
			),
		},
		{
			name: "udp ipv6 both NATs",
			f: established(flow.Flow{
				Orig:  tuple("fd00::10", 6000, "2001:db8::1", 7000, 17),
				Reply: tuple("fd00::30", 7001, "2001:db8::1", 6001, 17),
			}),
			fam: afInet6,
			want: merge(
				tupleAttrs("1", "fd00::10", "2001:db8::1", 17, 6000, 7000),
				tupleAttrs("2", "2001:db8::1", "fd00::10", 17, 7000, 6000),
				map[string][]byte{
					"6": nil, "6/4": a("2001:db8::1"), "6/5": a("2001:db8::1"),
					"6/3": nil, "6/3/1": be16(6001), "6/3/2": be16(6001),
					"13": nil, "13/4": a("fd00::30"), "13/5": a("fd00::30"),
					"13/3": nil, "13/3/1": be16(7001), "13/3/2": be16(7001),
				},
				common,
			),
		},
		{
			name: "icmp echo masquerade, id pinned",
			f: established(flow.Flow{
				Orig:  tuple("192.168.1.10", 1234, "198.51.100.7", 8<<8, 1),
				Reply: tuple("198.51.100.7", 1234, "203.0.113.1", 0, 1),
			}),
			fam: afInet,
			want: merge(
				tupleAttrs("1", "192.168.1.10", "198.51.100.7", 1, 1234, 8<<8),
				tupleAttrs("2", "198.51.100.7", "192.168.1.10", 1, 1234, 0),
				map[string][]byte{
					"6": nil, "6/1": a("203.0.113.1"), "6/2": a("203.0.113.1"),
					"6/3": nil, "6/3/1": be16(1234), "6/3/2": be16(1234),
				},
				common,
			),
		},
		{
			name: "icmpv6 echo, no NAT",
			f: established(flow.Flow{
				Orig:  tuple("2001:db8::10", 99, "2001:db8:2::7", 128<<8, 58),
				Reply: tuple("2001:db8:2::7", 99, "2001:db8::10", 129<<8, 58),
			}),
			fam: afInet6,
			want: merge(
				tupleAttrs("1", "2001:db8::10", "2001:db8:2::7", 58, 99, 128<<8),
				tupleAttrs("2", "2001:db8:2::7", "2001:db8::10", 58, 99, 129<<8),
				common,
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := createMessage(&tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := checkHeader(t, m, ipctnlMsgCTNew, nl.Request|nl.Acknowledge|nl.Create|nl.Excl, tt.fam)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateMessageErrors(t *testing.T) {
	ok := flow.Flow{
		Orig:    tuple("192.168.1.10", 1, "198.51.100.7", 8<<8, 1),
		Reply:   tuple("198.51.100.7", 1, "192.168.1.10", 0, 1),
		Timeout: 10,
	}
	if _, err := createMessage(&ok); err != nil {
		t.Fatalf("valid flow: %v", err)
	}
	noTimeout := ok
	noTimeout.Timeout = 0
	unreachable := ok
	unreachable.Orig.DstPort = 3 << 8 // destination unreachable: no entry of its own
	mixed := ok
	mixed.Reply.Src = netip.MustParseAddr("2001:db8::1")
	mapped := udpFlow(5353, 53)
	for _, a := range []*netip.Addr{&mapped.Orig.Src, &mapped.Orig.Dst, &mapped.Reply.Src, &mapped.Reply.Dst} {
		*a = netip.AddrFrom16(a.As16())
	}
	for _, tt := range []struct {
		name string
		f    flow.Flow
		want error
	}{
		{"zero timeout", noTimeout, errNoTimeout},
		{"icmp error type", unreachable, errICMPType},
		{"mixed families", mixed, nil},
		{"IPv4-mapped", mapped, nil}, // flow.Valid refuses it first
	} {
		_, err := createMessage(&tt.f)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestUpdateMessage(t *testing.T) {
	f := flow.Flow{
		Orig:     tuple("192.168.1.10", 40000, "198.51.100.7", 443, 6),
		Reply:    tuple("198.51.100.7", 443, "203.0.113.1", 61000, 6),
		Zone:     5,
		Mark:     42,
		Status:   flow.StatusSeenReply,
		Timeout:  3000,
		TCPState: flow.TCPFinWait,
	}
	// The entry is ASSURED, NATed, and has the HELPER bit: all kept.
	const existing = 0x2000 | 0x19e
	m, err := updateMessage(&f, existing)
	if err != nil {
		t.Fatal(err)
	}
	got := checkHeader(t, m, ipctnlMsgCTNew, nl.Request|nl.Acknowledge, afInet)
	want := merge(
		tupleAttrs("1", "192.168.1.10", "198.51.100.7", 6, 40000, 443),
		map[string][]byte{
			"3": be32(existing | 0x0a), "7": be32(3000), "8": be32(42), "18": be16(5),
			"4": nil, "4/1": nil, "4/1/1": {flow.TCPFinWait}, "4/1/2": {0}, "4/1/3": {0},
			"4/1/4": {8, 8}, "4/1/5": {8, 8},
		},
	)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

func TestLookupMessages(t *testing.T) {
	reply := tuple("198.51.100.7", 443, "203.0.113.1", 61000, 6)
	m, err := getMessage(lookup{Tuple: reply, Reply: true, Zone: 5})
	if err != nil {
		t.Fatal(err)
	}
	got := checkHeader(t, m, ipctnlMsgCTGet, nl.Request, afInet)
	want := merge(tupleAttrs("2", "198.51.100.7", "203.0.113.1", 6, 443, 61000), map[string][]byte{"18": be16(5)})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}

	orig := tuple("2001:db8::10", 99, "2001:db8:2::7", 128<<8, 58)
	m, err = deleteMessage(lookup{Tuple: orig, ID: 0xdeadbeef})
	if err != nil {
		t.Fatal(err)
	}
	got = checkHeader(t, m, ipctnlMsgCTDelete, nl.Request|nl.Acknowledge, afInet6)
	want = merge(tupleAttrs("1", "2001:db8::10", "2001:db8:2::7", 58, 99, 128<<8), map[string][]byte{"12": be32(0xdeadbeef)})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delete (-want +got):\n%s", diff)
	}

	// Without a tuple a CT_DELETE would flush the table: refused.
	for _, l := range []lookup{
		{},
		{Tuple: flow.Tuple{Src: orig.Src, Proto: 6}},
		{Tuple: flow.Tuple{Src: netip.MustParseAddr("10.0.0.1"), Dst: orig.Dst, Proto: 6}},
		{Tuple: flow.Tuple{Src: orig.Src, Dst: orig.Dst}},
	} {
		if _, err := deleteMessage(l); !errors.Is(err, errNoTuple) {
			t.Errorf("delete %v: err %v, want errNoTuple", l.Tuple, err)
		}
		if _, err := getMessage(l); !errors.Is(err, errNoTuple) {
			t.Errorf("get %v: err %v, want errNoTuple", l.Tuple, err)
		}
	}
}

func TestDumpMessage(t *testing.T) {
	got := checkHeader(t, dumpMessage(), ipctnlMsgCTGet, nl.Request|nl.Root|nl.Match, afUnspec)
	if len(got) != 0 {
		t.Errorf("attributes %v, want none", got)
	}
}

func TestPlainReply(t *testing.T) {
	for _, tt := range []struct {
		orig, want flow.Tuple
	}{
		{tuple("10.0.0.1", 1000, "10.0.0.2", 80, 6), tuple("10.0.0.2", 80, "10.0.0.1", 1000, 6)},
		{tuple("10.0.0.1", 7, "10.0.0.2", 8<<8, 1), tuple("10.0.0.2", 7, "10.0.0.1", 0, 1)},
		{tuple("10.0.0.1", 7, "10.0.0.2", 13<<8, 1), tuple("10.0.0.2", 7, "10.0.0.1", 14<<8, 1)},
		{tuple("fd00::1", 7, "fd00::2", 128<<8, 58), tuple("fd00::2", 7, "fd00::1", 129<<8, 58)},
		{tuple("fd00::1", 7, "fd00::2", 139<<8|1, 58), tuple("fd00::2", 7, "fd00::1", 140<<8|1, 58)},
	} {
		got, err := plainReply(tt.orig)
		if err != nil || got != tt.want {
			t.Errorf("plainReply(%v) = %v, %v; want %v", tt.orig, got, err, tt.want)
		}
	}
	if _, err := plainReply(tuple("fd00::1", 7, "fd00::2", 1<<8, 58)); !errors.Is(err, errICMPType) {
		t.Errorf("ICMPv6 unreachable: err %v", err)
	}
}
