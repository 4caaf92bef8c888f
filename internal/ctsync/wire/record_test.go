package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// TestNewRoundTrip: every sample flow survives NEW -> decode exactly, alone
// and in one stream with the others (sharing the address table).
func TestNewRoundTrip(t *testing.T) {
	flows := sampleFlows()
	names := make([]string, 0, len(flows))
	for n := range flows {
		names = append(names, n)
	}
	sort.Strings(names)
	var all []Record
	for i, name := range names {
		f := flows[name]
		if err := f.Valid(); err != nil && !strings.Contains(name, "gre") {
			t.Fatalf("%s: fixture invalid: %v", name, err)
		}
		r := Record{Type: RecordNew, ID: uint64(1000 + i*3), Version: uint64(i), Flow: f}
		all = append(all, r)
		t.Run(name, func(t *testing.T) {
			b, err := r.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary(%x): %v", b, err)
			}
			if d := diff(r, got); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
			t.Logf("%d bytes: %x", len(b), b)
		})
	}
	b := mustAppend(t, all)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(all, got); d != "" {
		t.Errorf("stream round trip (-want +got):\n%s", d)
	}
}

// TestNewCombinations walks the product of family, protocol, NAT shape,
// extension fields, status and timeout.
func TestNewCombinations(t *testing.T) {
	type addrs struct{ src, dst, wan, lan netip.Addr }
	fams := []addrs{{lan4, srv4, wan4, netip.MustParseAddr("10.1.1.1")}, {lan6, srv6, wan6, netip.MustParseAddr("fd00::2")}}
	protos := []uint8{flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoSCTP, 136}
	timeouts := []uint32{0, 1, 59, 60, 61, 120, 3599, 3600, 7440, 432000, math.MaxUint32}
	statuses := []uint32{0, flow.StatusConfirmed, flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed,
		flow.StatusSrcNAT | flow.StatusDstNAT, flow.StatusOffload | flow.StatusAssured, math.MaxUint32,
		flow.StatusConfirmed | natDone, flow.StatusConfirmed | 1<<7, 1 | 1<<9 | 1<<31}
	var recs []Record
	id := uint64(0)
	for _, fa := range fams {
		for _, p := range protos {
			if p == flow.ProtoICMP && fa.src.Is6() {
				p = flow.ProtoICMPv6
			}
			for nat := range 6 {
				for ext := range 8 {
					for si, st := range statuses {
						to := timeouts[(nat+ext+si)%len(timeouts)]
						var f flow.Flow
						switch nat {
						case 0:
							f = mkFlow(p, fa.src, fa.dst, 1000, 2000, netip.Addr{}, 0, netip.Addr{}, 0)
						case 1:
							f = mkFlow(p, fa.src, fa.dst, 1000, 2000, fa.wan, 1000, netip.Addr{}, 0)
						case 2:
							f = mkFlow(p, fa.src, fa.dst, 1000, 2000, fa.wan, 3000, netip.Addr{}, 0)
						case 3:
							f = mkFlow(p, fa.dst, fa.wan, 1000, 2000, netip.Addr{}, 0, fa.lan, 2000)
						case 4:
							f = mkFlow(p, fa.dst, fa.wan, 1000, 2000, netip.Addr{}, 0, fa.lan, 22)
						case 5:
							f = mkFlow(p, fa.src, fa.dst, 1000, 2000, fa.wan, 5, fa.lan, 6)
						}
						if ext&1 != 0 {
							f.Zone = uint16(ext * 100)
						}
						if ext&2 != 0 {
							f.Mark = uint32(ext) << 20
						}
						if ext&4 != 0 && p == flow.ProtoTCP {
							f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig = 14, 0, flow.TCPFlagSACKPerm
							switch si % 3 {
							case 0:
								f.TCPFlagsReply = flow.TCPFlagSACKPerm
							case 1:
								f.TCPFlagsReply = flow.TCPFlagBeLiberal
							}
						}
						if p == flow.ProtoTCP {
							f.TCPState = uint8(si+nat+ext) % (flow.TCPSynSent2 + 1)
						}
						f.Status, f.Timeout = st, to
						id += uint64(nat) // deltas of 0..5, and sometimes backwards
						if ext == 7 {
							id -= 9
						}
						recs = append(recs, Record{Type: RecordNew, ID: id, Version: uint64(ext * si), Flow: f})
					}
				}
			}
		}
	}
	b := mustAppend(t, recs)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// Each record alone, too (no shared table).
	for i := range recs {
		var r Record
		b, err := recs[i].MarshalBinary()
		if err == nil {
			err = r.UnmarshalBinary(b)
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := diff(recs[i], r); d != "" {
			t.Fatalf("record %d alone (-want +got):\n%s", i, d)
		}
	}
	t.Logf("%d NEW records, %d bytes, %.1f bytes/record", len(recs), len(b), float64(len(b))/float64(len(recs)))
}

func TestUpdateRefreshDeleteCombinations(t *testing.T) {
	var recs []Record
	id := uint64(500)
	extraBits := []uint32{0, flow.StatusOffload, 1 << 31, flow.StatusOffload | 1<<9, 1, 1 << 6}
	for state := uint8(0); state <= flow.TCPSynSent2; state++ {
		for _, next := range []bool{true, false} {
			for _, ver := range []uint64{0, 1, 300, math.MaxUint64} {
				for base := range 8 {
					for _, extra := range extraBits {
						for _, to := range []uint32{0, 10, 120, 432000, 123457} {
							if next {
								id++
							} else {
								id += 40
							}
							var st uint32
							if base&1 != 0 {
								st |= flow.StatusSeenReply
							}
							if base&2 != 0 {
								st |= flow.StatusAssured
							}
							if base&4 != 0 {
								st |= flow.StatusConfirmed
							}
							f := flow.Flow{TCPState: state, Status: st | extra, Timeout: to}
							if base&1 != 0 {
								f.TCPWScaleOrig, f.TCPFlagsReply = uint8(state), flow.TCPFlagSACKPerm
							}
							if to == 10 {
								f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply = 15, 15, 0xff, 0xff
							}
							recs = append(recs, Record{Type: RecordUpdate, ID: id, Version: ver, Flow: f})
						}
					}
				}
			}
		}
	}
	for _, d := range []uint64{1, 2, 31, 32, 1 << 40, math.MaxUint64 /* -1 */, 0} {
		id += d
		recs = append(recs, Record{Type: RecordDelete, ID: id})
		id += d
		recs = append(recs, Record{Type: RecordRefresh, ID: id, Flow: flow.Flow{Timeout: uint32(d)}})
		id++
		recs = append(recs, Record{Type: RecordRefresh, ID: id, Flow: flow.Flow{Timeout: 600}})
	}
	b := mustAppend(t, recs)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
}

// TestUpdateDropsNATStatus: NAT status bits are fixed at NEW; UPD drops them.
func TestUpdateDropsNATStatus(t *testing.T) {
	r := Record{Type: RecordUpdate, ID: 1, Version: 2, Flow: flow.Flow{TCPState: flow.TCPEstablished,
		Status: flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed | flow.StatusSrcNAT | flow.StatusDstNAT | natDone}}
	var got Record
	b, _ := r.MarshalBinary()
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if want := r.Flow.Status &^ fixedStatus; got.Flow.Status != want {
		t.Errorf("status %#x, want %#x", got.Flow.Status, want)
	}
	if len(b) != 3 {
		t.Errorf("UPD with id+1, version and no timeout is %d bytes (%x), want 3", len(b), b)
	}
}

func TestControlRecords(t *testing.T) {
	recs := []Record{
		{Type: RecordPing},
		{Type: RecordHello, Hello: Hello{PeerEpoch: 0xdeadbeef, PeerNonce: [NonceLen]byte{1, 2, 3, 15: 16}, Name: "router-a"}},
		{Type: RecordHello},
		{Type: RecordHello, Hello: Hello{Name: strings.Repeat("n", MaxNameLen)}},
		{Type: RecordBulkReq, Bulk: Bulk{Seq: 7}},
		{Type: RecordBulkStart, Bulk: Bulk{Seq: 7}},
		{Type: RecordBulkEnd, Bulk: Bulk{Seq: 7, Count: 20000, Digest: [DigestLen]byte{0xaa, 15: 0x55}}},
		{Type: RecordBulkEnd, Bulk: Bulk{Seq: math.MaxUint64, Count: math.MaxUint64}},
		{Type: RecordAck, Ack: Ack{Cum: 0}},
		{Type: RecordAck, Ack: Ack{Cum: 100, Ranges: []AckRange{{101, 101}, {103, 110}, {1000, 2000}}}},
		{Type: RecordAck, Ack: Ack{Cum: math.MaxUint64}},
		{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{7, math.MaxUint64 - 2}, {math.MaxUint64, math.MaxUint64}}}},
		{Type: RecordAck, Ack: Ack{Cum: 1, Ranges: func() []AckRange {
			r := make([]AckRange, MaxAckRanges)
			for i := range r {
				r[i] = AckRange{uint64(3 + 3*i), uint64(4 + 3*i)}
			}
			return r
		}()}},
	}
	// Control records between data records do not disturb the id context.
	var stream []Record
	for i, r := range recs {
		stream = append(stream, Record{Type: RecordDelete, ID: uint64(10 + i)}, r)
	}
	b := mustAppend(t, stream)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(stream, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	for i, r := range recs {
		b, _ := r.MarshalBinary()
		t.Logf("%-10v %3d bytes (record %d)", r.Type, len(b), i)
	}
}

// TestGolden pins the bytes of a few records, so a format change is a
// deliberate act.
func TestGolden(t *testing.T) {
	f1, f2 := masqFlow(1), masqFlow(2)
	cases := []struct {
		name string
		recs []Record
		hex  string
	}{{
		// 20: NEW v4 TCP, no version, no ext. 02: id 1 (zigzag).
		// 12: SYN_SENT, unit minutes. 42: SNAT inline, CONFIRMED.
		// tuple, WAN address, 02: 2 minutes.
		name: "masquerade NEW",
		recs: []Record{{Type: RecordNew, ID: 1, Flow: f1}},
		hex:  "20 02 12 42 c0a8010b 1507 0d02 9c47 01bb cb007107 02",
	}, {
		// The second flow of the frame refers to table entry 0 (82).
		name: "two masquerade NEWs",
		recs: []Record{{Type: RecordNew, ID: 1, Flow: f1}, {Type: RecordNew, ID: 2, Flow: f2}},
		hex: "20 02 12 42 c0a8010b 1507 0d02 9c47 01bb cb007107 02" +
			"20 02 12 82 c0a8010c 160e 1a03 9c4e 01bb 02",
	}, {
		// 5c: UPD, id+1, version, CONFIRMED; 01: version 1; 3f: ESTABLISHED, SEEN_REPLY,
		// ASSURED, hours; 78: 120 hours. Then DEL id 3 (61), DEL id 100 (60 c2 01).
		name: "UPD and DEL",
		recs: []Record{
			{Type: RecordDelete, ID: 1},
			{Type: RecordUpdate, ID: 2, Version: 1, Flow: flow.Flow{TCPState: flow.TCPEstablished, Timeout: 432000,
				Status: flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed}},
			{Type: RecordDelete, ID: 3},
			{Type: RecordDelete, ID: 100},
		},
		hex: "61 5c 01 3f 78 61 60 c2 01",
	}}
	for _, c := range cases {
		want, _ := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
		got := mustAppend(t, c.recs)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, got, want)
		}
	}
}

func TestIDDeltas(t *testing.T) {
	ids := []uint64{0, 1, 2, 100, 99, 1 << 62, math.MaxUint64, 0, 5, math.MaxUint64 - 3, 7}
	var recs []Record
	for i, id := range ids {
		typ := []RecordType{RecordDelete, RecordUpdate, RecordRefresh, RecordNew}[i%4]
		r := Record{Type: typ, ID: id}
		if typ == RecordNew {
			r.Flow = masqFlow(i)
		}
		recs = append(recs, r)
	}
	got, err := decodeAll(mustAppend(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

// TestAddressTable: more distinct NAT addresses than the table holds, in
// both families, repeated; all must come back right.
func TestAddressTable(t *testing.T) {
	var recs []Record
	for round := range 3 {
		for i := range MaxAddrTable + 5 {
			var f flow.Flow
			if i%3 == 2 {
				nat := netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 15: byte(i)})
				f = mkFlow(flow.ProtoUDP, lan6, srv6, 1, 2, nat, 1, netip.Addr{}, 0)
			} else {
				nat := netip.AddrFrom4([4]byte{100, 64, 0, byte(i)})
				f = mkFlow(flow.ProtoUDP, lan4, srv4, 1, 2, nat, 1, nat, 2) // SNAT and DNAT to the same address
			}
			recs = append(recs, Record{Type: RecordNew, ID: uint64(round*100 + i), Flow: f})
		}
	}
	b := mustAppend(t, recs)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestEncodeErrors(t *testing.T) {
	good := masqFlow(1)
	mod := func(fn func(f *flow.Flow)) flow.Flow { f := good; fn(&f); return f }
	cases := []struct {
		name string
		rec  Record
		want error
	}{
		{"unknown type", Record{Type: 0}, errRecordType},
		{"unknown type 99", Record{Type: 99}, errRecordType},
		{"invalid address", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Orig.Dst = netip.Addr{} })}, errAddress},
		{"mixed family", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Reply.Dst = wan6 })}, errAddress},
		{"zone", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Orig.Src = netip.MustParseAddr("fe80::1%eth0") })}, errAddress},
		{"4in6 mixed", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Orig.Src = netip.AddrFrom16(lan4.As16()) })}, errAddress},
		{"proto mismatch", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Reply.Proto = flow.ProtoUDP })}, errProto},
		{"proto 0", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Orig.Proto, f.Reply.Proto, f.TCPState = 0, 0, 0 })}, errProto},
		{"icmpv6 on v4", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) {
			f.Orig.Proto, f.Reply.Proto, f.TCPState = flow.ProtoICMPv6, flow.ProtoICMPv6, 0
		})}, errFamilyProto},
		{"icmp on v6", Record{Type: RecordNew, Flow: mkFlow(flow.ProtoICMP, lan6, srv6, 1, 2, netip.Addr{}, 0, netip.Addr{}, 0)}, errFamilyProto},
		{"tcp state 10", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.TCPState = 10 })}, errTCPState},
		{"udp with tcp state", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.Orig.Proto, f.Reply.Proto = flow.ProtoUDP, flow.ProtoUDP })}, errTCPFields},
		{"udp with flags", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) {
			f.Orig.Proto, f.Reply.Proto, f.TCPState, f.TCPFlagsReply = flow.ProtoUDP, flow.ProtoUDP, 0, 1
		})}, errTCPFields},
		{"wscale 16", Record{Type: RecordNew, Flow: mod(func(f *flow.Flow) { f.TCPWScaleReply = 16 })}, errWScale},
		{"upd state 10", Record{Type: RecordUpdate, Flow: flow.Flow{TCPState: 10}}, errTCPState},
		{"upd wscale 16", Record{Type: RecordUpdate, Flow: flow.Flow{TCPWScaleOrig: 16}}, errWScale},
		{"hello name", Record{Type: RecordHello, Hello: Hello{Name: strings.Repeat("x", MaxNameLen+1)}}, errNameLen},
		{"ack too many", Record{Type: RecordAck, Ack: Ack{Ranges: make([]AckRange, MaxAckRanges+1)}}, errAckRanges},
		{"ack first at cum", Record{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{5, 6}}}}, errAckRanges},
		{"ack inverted", Record{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{9, 8}}}}, errAckRanges},
		{"ack adjacent", Record{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{7, 8}, {9, 9}}}}, errAckRanges},
		{"ack overlap", Record{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{7, 10}, {9, 12}}}}, errAckRanges},
		{"ack unsorted", Record{Type: RecordAck, Ack: Ack{Cum: 5, Ranges: []AckRange{{20, 21}, {7, 8}}}}, errAckRanges},
		{"ack cum max", Record{Type: RecordAck, Ack: Ack{Cum: math.MaxUint64, Ranges: []AckRange{{0, 0}}}}, errAckRanges},
		{"ack overflow", Record{Type: RecordAck, Ack: Ack{Cum: 1, Ranges: []AckRange{{3, math.MaxUint64 - 1}, {math.MaxUint64, math.MaxUint64}}}}, errAckRanges},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Encoder
			prefix := []Record{{Type: RecordNew, ID: 41, Flow: good}}
			e.Reset([]byte("hdr"))
			if err := e.Append(&prefix[0]); err != nil {
				t.Fatal(err)
			}
			before := append([]byte(nil), e.Bytes()...)
			err := e.Append(&c.rec)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if !bytes.Equal(e.Bytes(), before) {
				t.Fatalf("failed Append changed the buffer")
			}
			// The context is unchanged too: the next record encodes as if
			// the failed one had never been tried.
			next := Record{Type: RecordNew, ID: 42, Flow: masqFlow(3)}
			if err := e.Append(&next); err != nil {
				t.Fatal(err)
			}
			want := mustAppend(t, append(prefix, next))
			if !bytes.Equal(e.Bytes()[3:], want) {
				t.Fatalf("context changed by failed Append:\n got %x\nwant %x", e.Bytes()[3:], want)
			}
		})
	}
}

func TestEncoderLimit(t *testing.T) {
	var e Encoder
	e.Limit = 100
	e.Reset(make([]byte, HeaderLen, 1500))
	var n int
	var sent []Record
	for i := range 20 {
		r := Record{Type: RecordNew, ID: uint64(i + 1), Flow: masqFlow(i)}
		err := e.Append(&r)
		if errors.Is(err, ErrFrameFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r)
		n++
	}
	if e.Len() > 100 || n == 0 || n == 20 {
		t.Fatalf("len %d after %d records", e.Len(), n)
	}
	got, err := decodeAll(e.Bytes()[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(sent, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// The record that did not fit starts the next frame, with an inline
	// address again.
	t.Logf("%d records in %d bytes", n, e.Len())
}

// TestDecodeErrors feeds hand-made invalid streams.
func TestDecodeErrors(t *testing.T) {
	newRec := func(r Record) string {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(b)
	}
	masq := newRec(Record{Type: RecordNew, ID: 1, Flow: masqFlow(1)})
	cases := []struct {
		name, hex string
		want      error
	}{
		{"kind 5", "a0", errUnknownRecord},
		{"kind 6", "c0", errUnknownRecord},
		{"kind 7", "ff", errUnknownRecord},
		{"control 7", "07", errUnknownRecord},
		{"want no id", "06 00", errWant},
		{"want too many ids", "06 41 01", errWant},
		{"want id overflow", "06 02 feffffffffffffffff01 01", errWant},
		{"truncated want", "06 02 01", io.ErrUnexpectedEOF},
		{"control 15", "0f", errUnknownRecord},
		{"extension without its length", "1f", io.ErrUnexpectedEOF},
		{"extension longer than the stream", "1f 05 00", io.ErrUnexpectedEOF},
		{"carp no states", "10 01 00", errCarp},
		{"carp state past its body", "10 04 01 03 657468 01 02", errCarp},
		{"carp vhid 0", "10 06 01 03 657468 00 02", errCarp},
		{"carp state 3", "10 06 01 03 657468 01 03", errCarp},
		{"carp empty name", "10 03 01 00 01 02", errCarp},
		{"carp name with a blank", "10 06 01 03 652068 01 02", errCarp},
		{"carp body past the stream", "10 09 01 03 657468 01 02", errCarp},
		{"refresh reserved", "91 00", errReservedBits},
		{"refresh reserved 2", "92 00", errReservedBits},
		{"ext reserved", "21 02 00 00 40", errReservedBits},
		{"ext two flag forms", "21 02 00 00 18", errReservedBits},
		{"ext two flag forms 2", "21 02 00 00 28", errReservedBits},
		{"ext two flag forms 3", "21 02 00 00 30", errReservedBits},
		{"udp with flags ext", "25 02 00 00 20", errTCPFields},
		{"proto 0", "2c 02 00 00 00", errProto},
		{"icmp via proto byte on v6", "3c 02 00 00 01", errFamilyProto},
		{"icmpv6 via proto byte on v4", "2c 02 00 00 3a", errFamilyProto},
		{"udp with tcp state", "24 02 10 00", errTCPFields},
		{"udp with wscale ext", "25 02 00 00 04", errTCPFields},
		{"tcp state 10", "20 02 a0 00", errTCPState},
		{"upd state 15", "50 f0", errTCPState},
		{"table0 empty", "20 02 00 80 0a000001 0a000002 0001 0002", errAddrTable},
		{"index past table", masq + "20 02 00 c0 0a000001 0a000002 0001 0002 01", errAddrTable},
		{"v4 table entry in v6 flow", masq + "30 02 00 80" + strings.Repeat("20010db8000000000000000000000001", 2) + "0001 0002", errAddrFamily},
		{"new extra status zero", "20 02 00 01 0a000001 0a000002 0001 0002 00", errStatus},
		{"new extra status > 29 bits", "20 02 00 01 0a000001 0a000002 0001 0002 8080808002", errVarint},
		{"upd extra status nat done bit", "42 00 00 10", errStatus},
		{"upd extra status nat bit", "42 00 00 02", errStatus},
		{"upd extra status zero", "42 00 00 00", errStatus},
		{"varint overflow", "60 ffffffffffffffffff02", errVarint},
		{"extra status > 32 bits", "42 00 00 8080808010", errVarint},
		{"zone > 16 bits", "21 02 00 00 01 0a000001 0a000002 0001 0002 808004", errVarint},
		{"mark > 32 bits", "21 02 00 00 02 0a000001 0a000002 0001 0002 8080808010", errVarint},
		{"timeout overflow hours", "40 00 03 80808010", errTimeout},
		{"timeout overflow minutes", "40 00 02 ffffffff0f", errTimeout},
		{"timeout overflow seconds", "40 00 01 8080808010", errTimeout},
		{"hello name too long", "01 00000000 " + strings.Repeat("00", 16) + " 41", errNameLen},
		{"ack too many ranges", "05 00 21", errAckRanges},
		{"ack cum max with range", "05 ffffffffffffffffff01 01 00 00", errAckRanges},
		{"ack range overflow", "05 00 01 fdffffffffffffffff01 05", errAckRanges},
		{"ack next range overflow", "05 00 02 00 fdffffffffffffffff01 00 00", errAckRanges},
		{"truncated new", masq[:20], io.ErrUnexpectedEOF},
		{"truncated varint", "60 80", io.ErrUnexpectedEOF},
		{"truncated hello", "01 0000", io.ErrUnexpectedEOF},
		{"truncated bulk end", "04 01 01 aabb", io.ErrUnexpectedEOF},
		{"truncated v6 address", "30 02 00 00 2001", io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			_, err = decodeAll(b)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "wire: record ") {
				t.Errorf("error %q lacks the prefix", err)
			}
		})
	}
}

// TestTruncation: every proper prefix of a single record fails with
// io.ErrUnexpectedEOF.
func TestTruncation(t *testing.T) {
	var recs []Record
	for _, f := range sampleFlows() {
		recs = append(recs, Record{Type: RecordNew, ID: 77, Version: 300, Flow: f})
	}
	recs = append(recs,
		Record{Type: RecordUpdate, ID: 1000, Version: 5, Flow: flow.Flow{TCPState: 3, Status: 1 << 20, Timeout: 432001, TCPFlagsReply: 1}},
		Record{Type: RecordRefresh, ID: 1000, Flow: flow.Flow{Timeout: 432001}},
		Record{Type: RecordDelete, ID: 1000},
		Record{Type: RecordHello, Hello: Hello{Name: "x"}},
		Record{Type: RecordBulkEnd, Bulk: Bulk{Seq: 300, Count: 300}},
		Record{Type: RecordAck, Ack: Ack{Cum: 300, Ranges: []AckRange{{400, 500}}}},
	)
	for _, r := range recs {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(b) {
			var got Record
			err := got.UnmarshalBinary(b[:n])
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%v %x cut at %d: err = %v", r.Type, b, n, err)
			}
		}
		var got Record
		if err := got.UnmarshalBinary(append(b, 0)); !errors.Is(err, errTrailing) {
			t.Errorf("%v with a trailing byte: err = %v", r.Type, err)
		}
	}
}

func TestDecoderReuse(t *testing.T) {
	b1 := mustAppend(t, []Record{{Type: RecordNew, ID: 5, Flow: masqFlow(1)}})
	b2 := mustAppend(t, []Record{{Type: RecordDelete, ID: 1}})
	d := newDecoder([]byte{0xff})
	if d.Next() || d.Err() == nil {
		t.Fatal("bad stream decoded")
	}
	for _, b := range [][]byte{b1, b2} {
		d.Reset(b)
		if !d.Next() {
			t.Fatalf("Next: %v", d.Err())
		}
		if d.Next() || d.Err() != nil || d.offset() != len(b) {
			t.Fatalf("after the only record: err %v off %d", d.Err(), d.offset())
		}
	}
	// The second frame's id context starts from zero again.
	d.Reset(b2)
	d.Next()
	if d.Record().ID != 1 {
		t.Fatalf("id %d after Reset", d.Record().ID)
	}
	stop := errors.New("stop")
	if err := DecodeRecords(b1, func(*Record) error { return stop }); err != stop {
		t.Fatalf("callback error not returned: %v", err)
	}
}

func TestRecordTypeString(t *testing.T) {
	for rt := RecordNew; rt <= RecordPing; rt++ {
		if s := rt.String(); strings.HasPrefix(s, "RecordType") {
			t.Errorf("%d has no name", rt)
		}
	}
	if s := RecordType(0).String(); s != "RecordType(0)" {
		t.Errorf("got %q", s)
	}
}

func TestWantRecord(t *testing.T) {
	for _, ids := range [][]uint64{{1}, {3, 4, 5, 900}, {0, math.MaxUint64}} {
		recs := []Record{{Type: RecordWant, Want: ids}, {Type: RecordPing}}
		b := mustAppend(t, recs)
		got, err := decodeAll(b)
		if err != nil {
			t.Fatalf("%v: %v", ids, err)
		}
		if d := diff(recs, got); d != "" {
			t.Errorf("%v: round trip (-want +got):\n%s", ids, d)
		}
	}
	if b, _ := appendRecords(nil, []Record{{Type: RecordWant, Want: []uint64{1, 2, 3}}}); len(b) != 5 {
		t.Errorf("WANT of three consecutive ids is %d bytes, want 5", len(b))
	}
	many := make([]uint64, MaxWant+1)
	for i := range many {
		many[i] = uint64(i)
	}
	for _, ids := range [][]uint64{nil, {5, 5}, {6, 2}, many} {
		if _, err := appendRecords(nil, []Record{{Type: RecordWant, Want: ids}}); err == nil {
			t.Errorf("WANT %v encoded", ids)
		}
	}
}
