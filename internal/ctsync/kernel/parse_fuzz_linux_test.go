package kernel

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// parseMessage decoded with ti-mo/conntrack until the binary dropped it
// for its size (docs/size-budget.md); tiMoParse is that decoder, kept here
// to hold the new one to it. It takes mdlayher/netlink's Message: the one
// import of mdlayher left in carpd, in this test only, for this oracle.
func tiMoParse(m nl.Message) (flow.EventType, flow.Flow, uint32, bool) {
	var ev conntrack.Event
	h := netlink.Header{Length: m.Header.Length, Type: netlink.HeaderType(m.Header.Type),
		Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: m.Header.Sequence, PID: m.Header.PID}
	if err := ev.Unmarshal(netlink.Message{Header: h, Data: m.Data}); err != nil || ev.Flow == nil {
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
func sameAsTiMo(t *testing.T, m nl.Message, strict bool) {
	t.Helper()
	if len(m.Data) >= nfgenmsgLen && wideType(m.Data[nfgenmsgLen:]) {
		return
	}
	typ, f, id, err := parseMessage(m)
	wtyp, wf, wid, ok := tiMoParse(m)
	switch {
	case ok && err != nil:
		t.Fatalf("ti-mo parses it, parseMessage: %v", err)
	case !ok && err == nil && (strict || readsAll(m)):
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

// wideType reports whether b, the attributes of a message, has an
// attribute type above 255 at the top or in the nests both decoders read:
// the tuples, their IP and protocol nests, the protoinfo and TCP's.
func wideType(b []byte) bool {
	it := attrIter{b: b}
	for it.next() {
		if it.typ > 255 {
			return true
		}
		switch it.typ {
		case ctaTupleOrig, ctaTupleReply, ctaProtoinfo:
			c := attrIter{b: it.data}
			for c.next() {
				if c.typ > 255 {
					return true
				}
				if c.typ <= 2 && anyWide(c.data) {
					return true
				}
			}
		}
	}
	return false
}

// anyWide: an attribute type above 255 among the attributes of b.
func anyWide(b []byte) bool {
	it := attrIter{b: b}
	for it.next() {
		if it.typ > 255 {
			return true
		}
	}
	return false
}

// readsAll reports whether parseMessage reads every attribute of m: no
// top-level attribute it skips (CTA_HELP, counters, timestamps, labels,
// ...) and no SCTP or DCCP protoinfo. Then it must refuse what ti-mo
// refuses.
func readsAll(m nl.Message) bool {
	if len(m.Data) < nfgenmsgLen {
		return true
	}
	it := attrIter{b: m.Data[nfgenmsgLen:]}
	for it.next() {
		switch it.typ {
		case ctaTupleOrig, ctaTupleReply, ctaStatus, ctaTimeout, ctaMark, ctaID, ctaUse, ctaZone:
		case ctaProtoinfo:
			pi := attrIter{b: it.data}
			for pi.next() {
				if pi.typ != ctaProtoinfoTCP {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// goldenMessages are the captured kernel events.
func goldenMessages(t testing.TB) []nl.Message {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.nlmsg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden events in %s: %v", goldenDir, err)
	}
	var msgs []nl.Message
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
		m := nl.Message{Header: nl.Header{Type: nl.HeaderType(typ), Flags: nl.HeaderFlags(flags)}, Data: data}
		sameAsTiMo(t, m, false)
	})
}

// TestParseMessageShapes: messages of the wrong shape, which single-byte
// changes rarely make: nests with too few or too many children, numbers
// of the wrong width, protoinfo twice. Both decoders must agree on each.
func TestParseMessageShapes(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	type part func(a *attrs)
	ip := func(addrs ...netip.Addr) part {
		return func(a *attrs) {
			n := a.nest(ctaTupleIP)
			for i, x := range addrs {
				a.addr(uint16(ctaIPv4Src+i%2), x)
			}
			a.end(n)
		}
	}
	proto := func(kids ...part) part {
		return func(a *attrs) {
			n := a.nest(ctaTupleProto)
			for _, k := range kids {
				k(a)
			}
			a.end(n)
		}
	}
	num := func(p uint8) part { return func(a *attrs) { a.u8(ctaProtoNum, p) } }
	ports := func(a *attrs) { a.be16(ctaProtoSrcPort, 1000); a.be16(ctaProtoDstPort, 80) }
	nest := func(typ uint16, kids ...part) part {
		return func(a *attrs) {
			n := a.nest(typ)
			for _, k := range kids {
				k(a)
			}
			a.end(n)
		}
	}
	raw := func(typ uint16, b ...byte) part { return func(a *attrs) { a.put(typ, b...) } }
	good := nest(ctaTupleOrig, ip(src, dst), proto(num(6), ports))
	reply := nest(ctaTupleReply, ip(dst, src), proto(num(6), ports))
	tcp := nest(ctaProtoinfo, nest(ctaProtoinfoTCP, raw(ctaProtoinfoTCPState, 3)))
	for name, parts := range map[string][]part{
		"good":                 {good, reply, tcp, raw(ctaUse, 0, 0, 0, 1), raw(ctaZone, 0, 5)},
		"tuple without proto":  {nest(ctaTupleOrig, ip(src, dst)), reply},
		"tuple with zone":      {nest(ctaTupleOrig, ip(src, dst), proto(num(6), ports), raw(ctaTupleZone, 0, 1)), reply},
		"tuple zone 4 bytes":   {nest(ctaTupleOrig, ip(src, dst), proto(num(6), ports), raw(ctaTupleZone, 0, 0, 0, 1)), reply},
		"tuple unknown child":  {nest(ctaTupleOrig, ip(src, dst), proto(num(6), ports), raw(7, 1, 2, 3, 4)), reply},
		"one address":          {nest(ctaTupleOrig, ip(src), proto(num(6), ports)), reply},
		"three addresses":      {nest(ctaTupleOrig, ip(src, dst, src), proto(num(6), ports)), reply},
		"empty proto":          {nest(ctaTupleOrig, ip(src, dst), proto()), reply},
		"proto unknown child":  {nest(ctaTupleOrig, ip(src, dst), proto(num(6), raw(10, 1))), reply},
		"port 4 bytes":         {nest(ctaTupleOrig, ip(src, dst), proto(num(6), raw(ctaProtoSrcPort, 0, 0, 0, 1))), reply},
		"use 2 bytes":          {good, reply, raw(ctaUse, 0, 1)},
		"zone 4 bytes":         {good, reply, raw(ctaZone, 0, 0, 0, 1)},
		"status 2 bytes":       {good, reply, raw(ctaStatus, 0, 1)},
		"protoinfo twice":      {good, reply, tcp, tcp},
		"protoinfo two kids":   {good, reply, nest(ctaProtoinfo, nest(ctaProtoinfoTCP, raw(ctaProtoinfoTCPState, 3)), nest(ctaProtoinfoTCP, raw(ctaProtoinfoTCPState, 3)))},
		"empty TCP protoinfo":  {good, reply, nest(ctaProtoinfo, nest(ctaProtoinfoTCP))},
		"TCP flags 1 byte":     {good, reply, nest(ctaProtoinfo, nest(ctaProtoinfoTCP, raw(ctaProtoinfoTCPFlagsOrig, 3)))},
		"TCP unknown child":    {good, reply, nest(ctaProtoinfo, nest(ctaProtoinfoTCP, raw(9, 3)))},
		"SCTP protoinfo":       {good, reply, nest(ctaProtoinfo, nest(3, raw(1, 3)))},
		"protoinfo type 4":     {good, reply, nest(ctaProtoinfo, nest(4, raw(1, 3)))},
		"tuple not nested":     {raw(ctaTupleOrig, 8, 0, 1, 0, 192, 0, 2, 1), reply},
		"protoinfo not nested": {good, reply, raw(ctaProtoinfo, 5, 0, 1, 0, 3, 0, 0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			a := newAttrs(afInet)
			for _, p := range parts {
				p(a)
			}
			m := a.message(ipctnlMsgCTNew, 0)
			_, _, _, err := parseMessage(m)
			_, _, _, ok := tiMoParse(m)
			if ok != (err == nil) {
				t.Errorf("ti-mo parses it: %v; parseMessage: %v", ok, err)
			}
			sameAsTiMo(t, m, true)
		})
	}
}
