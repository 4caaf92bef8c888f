package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// parseMessage decoded with ti-mo/conntrack until the binary dropped it
// for its size (docs/size-budget.md); tiMoParse is that decoder, kept here
// to hold the new one to it.
func tiMoParse(m netlink.Message) (flow.EventType, flow.Flow, uint32, bool) {
	var ev conntrack.Event
	if err := ev.Unmarshal(m); err != nil || ev.Flow == nil {
		return 0, flow.Flow{}, 0, false
	}
	var typ flow.EventType
	switch ev.Type {
	case conntrack.EventNew:
		typ = flow.EventNew
	case conntrack.EventUpdate:
		typ = flow.EventUpdate
	case conntrack.EventDestroy:
		typ = flow.EventDestroy
	default:
		return 0, flow.Flow{}, 0, false
	}
	cf := ev.Flow
	tuple := func(t conntrack.Tuple) flow.Tuple {
		out := flow.Tuple{Src: t.IP.SourceAddress.Unmap(), Dst: t.IP.DestinationAddress.Unmap(), Proto: t.Proto.Protocol}
		switch t.Proto.Protocol {
		case flow.ProtoICMP, flow.ProtoICMPv6:
			out.SrcPort = t.Proto.ICMPID
			out.DstPort = uint16(t.Proto.ICMPType)<<8 | uint16(t.Proto.ICMPCode)
		default:
			out.SrcPort = t.Proto.SourcePort
			out.DstPort = t.Proto.DestinationPort
		}
		return out
	}
	f := flow.Flow{
		Orig: tuple(cf.TupleOrig), Reply: tuple(cf.TupleReply),
		Zone: cf.Zone, Mark: cf.Mark, Status: uint32(cf.Status), Timeout: cf.Timeout,
	}
	if tcp := cf.ProtoInfo.TCP; tcp != nil {
		f.TCPState = tcp.State
		f.TCPWScaleOrig = tcp.OriginalWindowScale
		f.TCPWScaleReply = tcp.ReplyWindowScale
		f.TCPFlagsOrig = uint8(tcp.OriginalFlags >> 8)
		f.TCPFlagsReply = uint8(tcp.ReplyFlags >> 8)
	}
	return typ, f, cf.ID, true
}

// sameAsTiMo fails t when parseMessage and ti-mo's decoder disagree on m:
// whatever ti-mo accepted must parse to the same event, flow and id.
// parseMessage may refuse less: it skips the attributes it does not keep
// (helpers, counters, timestamps, ...) where ti-mo checked them; strict
// says that m has none of those, so both must refuse it alike.
//
// ti-mo reads attribute types as uint8, so it takes type 257 for 1;
// messages with a type above 255 at any depth are not compared.
func sameAsTiMo(t *testing.T, m netlink.Message, strict bool) {
	t.Helper()
	if len(m.Data) >= nfgenmsgLen && wideType(m.Data[nfgenmsgLen:], 0) {
		return
	}
	typ, f, id, err := parseMessage(m)
	wtyp, wf, wid, ok := tiMoParse(m)
	switch {
	case ok && err != nil:
		t.Fatalf("ti-mo parses it, parseMessage: %v", err)
	case !ok && err == nil && strict:
		t.Fatalf("ti-mo refuses it, parseMessage parses %v %v", typ, f)
	case ok:
		if typ != wtyp || id != wid {
			t.Errorf("type %v id %#x, ti-mo %v %#x", typ, id, wtyp, wid)
		}
		if diff := cmp.Diff(wf, f, cmpAddr); diff != "" {
			t.Errorf("flow differs from ti-mo's (-ti-mo +parseMessage):\n%s", diff)
		}
	}
}

// wideType reports whether b, read as attributes, or any payload in it
// that reads as attributes, has an attribute type above 255.
func wideType(b []byte, depth int) bool {
	if depth > 4 {
		return false
	}
	it := attrIter{b: b}
	for it.next() {
		if it.typ > 255 || wideType(it.data, depth+1) {
			return true
		}
	}
	return false
}

// goldenMessages are the captured kernel events.
func goldenMessages(t testing.TB) []netlink.Message {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.nlmsg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden events in %s: %v", goldenDir, err)
	}
	var msgs []netlink.Message
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := parseDatagram(b)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, ms...)
	}
	return msgs
}

// TestParseMessageLikeTiMo compares the two decoders on the golden events,
// on the messages of TestParseMessage, and on every truncation and every
// single-byte change of them.
func TestParseMessageLikeTiMo(t *testing.T) {
	msgs := goldenMessages(t)
	masq := flow.Flow{
		Orig: tuple("192.168.1.10", 40000, "198.51.100.7", 443, 6), Reply: tuple("198.51.100.7", 443, "203.0.113.1", 61000, 6),
		Zone: 5, Mark: 42, Status: 0x19e, Timeout: 431999, TCPState: flow.TCPEstablished,
		TCPWScaleOrig: 7, TCPWScaleReply: 9, TCPFlagsOrig: 0x2b, TCPFlagsReply: 0x09,
	}
	ping := flow.Flow{Orig: tuple("192.168.1.10", 77, "198.51.100.7", 8<<8, 1), Reply: tuple("198.51.100.7", 1500, "203.0.113.1", 0, 1), Status: 0x19a, Timeout: 29}
	v6 := flow.Flow{Orig: tuple("2001:db8::10", 5353, "2001:db8:2::7", 53, 17), Reply: tuple("2001:db8:2::7", 53, "2001:db8::10", 5353, 17), Status: 0x8, Timeout: 30}
	for _, typ := range []flow.EventType{flow.EventNew, flow.EventUpdate, flow.EventDestroy} {
		for _, f := range []flow.Flow{masq, ping, v6} {
			msgs = append(msgs, kernelMsg(t, typ, f, 0xcafe, 0))
		}
	}
	for i, m := range msgs {
		if _, _, _, ok := tiMoParse(m); !ok {
			t.Fatalf("message %d: ti-mo refuses it", i)
		}
		sameAsTiMo(t, m, true)
		for n := range len(m.Data) {
			c := m
			c.Data = m.Data[:n]
			sameAsTiMo(t, c, false)
		}
		for j := range len(m.Data) {
			for _, x := range []byte{0x01, 0x04, 0x80, 0xff} {
				c := m
				c.Data = append([]byte(nil), m.Data...)
				c.Data[j] ^= x
				sameAsTiMo(t, c, false)
			}
		}
	}
}

// FuzzParseMessage holds parseMessage to ti-mo/conntrack's decoder on any
// message: what ti-mo accepts must parse alike, and nothing may panic.
func FuzzParseMessage(f *testing.F) {
	for _, m := range goldenMessages(f) {
		f.Add(uint16(m.Header.Type), uint16(m.Header.Flags), m.Data)
	}
	f.Fuzz(func(t *testing.T, typ, flags uint16, data []byte) {
		m := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.HeaderFlags(flags)}, Data: data}
		sameAsTiMo(t, m, false)
	})
}
