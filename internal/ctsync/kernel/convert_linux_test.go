package kernel

import (
	"encoding/binary"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
	"github.com/google/go-cmp/cmp"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"
)

// kernelMsg builds the message ctnetlink sends about f (an event, a dump
// part or a CT_GET answer) with ti-mo/netfilter's marshaller: tuples as
// the kernel has them (NAT applied), status, timeout, mark, zone, id, TCP
// protoinfo with the mask bytes zero, as dumps show them.
func kernelMsg(t testing.TB, typ flow.EventType, f flow.Flow, id, pid uint32) nl.Message {
	t.Helper()
	tupleAttr := func(at uint16, tu flow.Tuple) netfilter.Attribute {
		ipt := netfilter.Attribute{Type: ctaTupleIP, Nested: true}
		if tu.Src.Is4() {
			ipt.Children = []netfilter.Attribute{{Type: ctaIPv4Src, Data: tu.Src.AsSlice()}, {Type: ctaIPv4Dst, Data: tu.Dst.AsSlice()}}
		} else {
			ipt.Children = []netfilter.Attribute{{Type: ctaIPv6Src, Data: tu.Src.AsSlice()}, {Type: ctaIPv6Dst, Data: tu.Dst.AsSlice()}}
		}
		pt := netfilter.Attribute{Type: ctaTupleProto, Nested: true, Children: []netfilter.Attribute{{Type: ctaProtoNum, Data: []byte{tu.Proto}}}}
		switch tu.Proto {
		case flow.ProtoICMP:
			pt.Children = append(pt.Children,
				netfilter.Attribute{Type: ctaProtoICMPID, Data: netfilter.Uint16Bytes(tu.SrcPort)},
				netfilter.Attribute{Type: ctaProtoICMPType, Data: []byte{byte(tu.DstPort >> 8)}},
				netfilter.Attribute{Type: ctaProtoICMPCode, Data: []byte{byte(tu.DstPort)}})
		default:
			pt.Children = append(pt.Children,
				netfilter.Attribute{Type: ctaProtoSrcPort, Data: netfilter.Uint16Bytes(tu.SrcPort)},
				netfilter.Attribute{Type: ctaProtoDstPort, Data: netfilter.Uint16Bytes(tu.DstPort)})
		}
		return netfilter.Attribute{Type: at, Nested: true, Children: []netfilter.Attribute{ipt, pt}}
	}
	attrs := []netfilter.Attribute{
		tupleAttr(ctaTupleOrig, f.Orig),
		tupleAttr(ctaTupleReply, f.Reply),
		{Type: ctaStatus, Data: netfilter.Uint32Bytes(f.Status)},
		{Type: ctaTimeout, Data: netfilter.Uint32Bytes(f.Timeout)},
		{Type: ctaMark, Data: netfilter.Uint32Bytes(f.Mark)},
		{Type: ctaID, Data: netfilter.Uint32Bytes(id)},
	}
	if f.Zone != 0 {
		attrs = append(attrs, netfilter.Attribute{Type: ctaZone, Data: netfilter.Uint16Bytes(f.Zone)})
	}
	if f.Orig.Proto == flow.ProtoTCP {
		attrs = append(attrs, netfilter.Attribute{Type: ctaProtoinfo, Nested: true, Children: []netfilter.Attribute{{
			Type: ctaProtoinfoTCP, Nested: true, Children: []netfilter.Attribute{
				{Type: ctaProtoinfoTCPState, Data: []byte{f.TCPState}},
				{Type: ctaProtoinfoTCPWScaleOrig, Data: []byte{f.TCPWScaleOrig}},
				{Type: ctaProtoinfoTCPWScaleReply, Data: []byte{f.TCPWScaleReply}},
				{Type: ctaProtoinfoTCPFlagsOrig, Data: []byte{f.TCPFlagsOrig, 0}},
				{Type: ctaProtoinfoTCPFlagsReply, Data: []byte{f.TCPFlagsReply, 0}},
			},
		}}})
	}
	msgType, flags := uint8(ipctnlMsgCTNew), nl.HeaderFlags(0)
	switch typ {
	case flow.EventNew:
		flags = nl.Create | nl.Excl
	case flow.EventDestroy:
		msgType = ipctnlMsgCTDelete
	}
	fam := netfilter.ProtoIPv4
	if f.Orig.Src.Is6() {
		fam = netfilter.ProtoIPv6
	}
	m, err := netfilter.MarshalNetlink(netfilter.Header{
		SubsystemID: netfilter.NFSubsysCTNetlink,
		MessageType: netfilter.MessageType(msgType),
		Family:      fam,
	}, attrs)
	if err != nil {
		t.Fatal(err)
	}
	return nl.Message{
		Header: nl.Header{Length: m.Header.Length, Type: nl.HeaderType(m.Header.Type), Flags: flags, PID: pid},
		Data:   m.Data,
	}
}

func TestParseMessage(t *testing.T) {
	masq := flow.Flow{
		Orig:           tuple("192.168.1.10", 40000, "198.51.100.7", 443, 6),
		Reply:          tuple("198.51.100.7", 443, "203.0.113.1", 61000, 6),
		Zone:           5,
		Mark:           42,
		Status:         0x19e,
		Timeout:        431999,
		TCPState:       flow.TCPEstablished,
		TCPWScaleOrig:  7,
		TCPWScaleReply: 9,
		TCPFlagsOrig:   0x2b,
		TCPFlagsReply:  0x09,
	}
	ping := flow.Flow{
		Orig:    tuple("192.168.1.10", 77, "198.51.100.7", 8<<8, 1),
		Reply:   tuple("198.51.100.7", 1500, "203.0.113.1", 0, 1),
		Status:  0x19a,
		Timeout: 29,
	}
	v6 := flow.Flow{
		Orig:    tuple("2001:db8::10", 5353, "2001:db8:2::7", 53, 17),
		Reply:   tuple("2001:db8:2::7", 53, "2001:db8::10", 5353, 17),
		Status:  0x8,
		Timeout: 30,
	}
	for _, tt := range []struct {
		typ flow.EventType
		f   flow.Flow
	}{
		{flow.EventNew, masq},
		{flow.EventUpdate, masq},
		{flow.EventDestroy, masq},
		{flow.EventNew, ping},
		{flow.EventUpdate, v6},
	} {
		typ, got, id, err := parseMessage(kernelMsg(t, tt.typ, tt.f, 0xcafe, 0))
		if err != nil {
			t.Fatalf("%v %v: %v", tt.typ, tt.f.Orig, err)
		}
		if typ != tt.typ || id != 0xcafe {
			t.Errorf("%v %v: type %v id %#x", tt.typ, tt.f.Orig, typ, id)
		}
		if diff := cmp.Diff(tt.f, got, cmpAddr); diff != "" {
			t.Errorf("%v %v (-want +got):\n%s", tt.typ, tt.f.Orig, diff)
		}
	}

	// Not a conntrack entry: an expectation, and garbage.
	exp := kernelMsg(t, flow.EventNew, masq, 1, 0)
	exp.Header.Type = nl.HeaderType(2<<8 | 0) // NFNL_SUBSYS_CTNETLINK_EXP
	if _, _, _, err := parseMessage(exp); err == nil {
		t.Errorf("expectation parsed as a flow")
	}
	bad := kernelMsg(t, flow.EventNew, masq, 1, 0)
	bad.Data = bad.Data[:len(bad.Data)-3]
	if _, _, _, err := parseMessage(bad); err == nil {
		t.Errorf("truncated message parsed")
	}
}

// TestParseDatagram splits datagrams as the kernel sends them, the last
// message unpadded.
func TestParseDatagram(t *testing.T) {
	f := filterFlow(nil)
	var dgram []byte
	for i := range 3 {
		m := kernelMsg(t, flow.EventUpdate, f, uint32(i), 0)
		m.Header.Length = uint32(nlmsgHeaderLen + len(m.Data))
		m.Header.Sequence = uint32(i)
		dgram = nl.AppendMessage(dgram, m)
	}
	msgs, err := parseDatagram(dgram)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("parseDatagram: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Header.Sequence != uint32(i) {
			t.Errorf("message %d has sequence %d", i, m.Header.Sequence)
		}
		if _, got, _, err := parseMessage(m); err != nil || got.Orig != f.Orig {
			t.Errorf("message %d: %v %v", i, got.Orig, err)
		}
	}
	if _, err := parseDatagram(dgram[:len(dgram)-8]); err == nil {
		t.Errorf("truncated datagram: no error")
	}
	ack := make([]byte, nlmsgHeaderLen+4)
	binary.NativeEndian.PutUint32(ack, uint32(len(ack)))
	errno := -int32(unix.EEXIST)
	binary.NativeEndian.PutUint32(ack[nlmsgHeaderLen:], uint32(errno))
	msgs, err = parseDatagram(ack)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ack: %v %v", msgs, err)
	}
	if errno, err := ackErrno(msgs[0]); err != nil || errno != unix.EEXIST {
		t.Errorf("ack errno %v %v, want EEXIST", errno, err)
	}
}
