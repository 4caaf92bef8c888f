package ubus

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/carpd/carpd/ubus/blob"
	"github.com/google/go-cmp/cmp"
)

// TraceFile holds real byte traces of ubusd, libubus and the ubus CLI
// (openwrt/ubus 3cc98db, libubox 1aa36ee), captured for the project
// (docs/ubus-protocol.md).
const TraceFile = "testdata/trace.txt"

// TraceMessageCount is how many messages with a hex dump trace.txt holds.
// Parsing fewer means the parser broke, and the tests would pass vacuously.
const TraceMessageCount = 53

// TraceMsg is one message of the trace.
type TraceMsg struct {
	Section string // "1", "1b", "3-owner", …
	Line    int    // line of the message header in the file
	Dir     string // SENT or RECV, from the traced process' point of view
	Type    string // type name, e.g. "LOOKUP"
	TypeNum int
	Seq     uint16
	Peer    uint32
	Total   int
	Bytes   []byte
	Attrs   []TraceAttr // from the "decoded body" annotations
}

// TraceAttr is one annotated ubus attribute: UBUS_ATTR_NAME(id) len=n.
type TraceAttr struct {
	ID  uint8
	Len int
}

var (
	traceSection = regexp.MustCompile(`^# (\d+[a-z]?)\. `)
	traceHeader  = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d+ fd=\d+ (SENT|RECV) (\w+)\s+ver=0 type=(\d+)\(\w+\) seq=(\d+) peer=0x([0-9a-f]{8})\s+total=(\d+) bytes`)
	traceHex     = regexp.MustCompile(`^\s+hex: ([0-9a-f]+)$`)
	traceAttr    = regexp.MustCompile(`^\s{6}UBUS_ATTR_\w+\((\d+)\) len=(\d+):`)
)

// TraceMessages parses every message with a hex dump out of trace.txt. It
// fails the test unless it finds exactly TraceMessageCount.
func TraceMessages(t testing.TB) []TraceMsg {
	t.Helper()
	f, err := os.Open(TraceFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		msgs    []TraceMsg
		cur     *TraceMsg
		section string
		line    int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line++
		text := sc.Text()
		if m := traceSection.FindStringSubmatch(text); m != nil {
			section = m[1]
			continue
		}
		if strings.HasPrefix(text, "#    OBJECT-OWNER VIEW") {
			section += "-owner"
			continue
		}
		if m := traceHeader.FindStringSubmatch(text); m != nil {
			typeNum, _ := strconv.Atoi(m[3])
			seq, _ := strconv.ParseUint(m[4], 10, 16)
			peer, _ := strconv.ParseUint(m[5], 16, 32)
			total, _ := strconv.Atoi(m[6])
			msgs = append(msgs, TraceMsg{Section: section, Line: line, Dir: m[1], Type: m[2],
				TypeNum: typeNum, Seq: uint16(seq), Peer: uint32(peer), Total: total})
			cur = &msgs[len(msgs)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if m := traceHex.FindStringSubmatch(text); m != nil {
			if cur.Bytes, err = hex.DecodeString(m[1]); err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
		} else if m := traceAttr.FindStringSubmatch(text); m != nil {
			id, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			cur.Attrs = append(cur.Attrs, TraceAttr{ID: uint8(id), Len: n})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Section 1c is ubusd's summary without hex dumps; everything else
	// must have one.
	out := msgs[:0]
	for _, m := range msgs {
		switch {
		case m.Bytes != nil:
			out = append(out, m)
		case m.Section != "1c":
			t.Fatalf("line %d: message without hex dump", m.Line)
		}
	}
	if len(out) != TraceMessageCount {
		t.Fatalf("parsed %d messages with hex dumps from %s, want %d", len(out), TraceFile, TraceMessageCount)
	}
	return out
}

// TraceFind returns the n-th (from 0) message of a section with the given
// direction and type.
func TraceFind(t testing.TB, msgs []TraceMsg, section, dir, typ string, n int) TraceMsg {
	t.Helper()
	for _, m := range msgs {
		if m.Section == section && m.Dir == dir && m.Type == typ {
			if n == 0 {
				return m
			}
			n--
		}
	}
	t.Fatalf("trace: no %s %s #%d in section %s", dir, typ, n, section)
	return TraceMsg{}
}

// TestTraceDecodes: every message in the trace decodes, agrees with the
// trace's own annotations, and re-encodes to the same bytes.
func TestTraceDecodes(t *testing.T) {
	for _, tm := range TraceMessages(t) {
		var m Message
		if err := m.UnmarshalBinary(tm.Bytes); err != nil {
			t.Errorf("line %d: %v", tm.Line, err)
			continue
		}
		if len(tm.Bytes) != tm.Total || int(m.Type) != tm.TypeNum || m.Type.String() != tm.Type ||
			m.Seq != tm.Seq || m.Peer != tm.Peer {
			t.Errorf("line %d: decoded %v seq %d peer %#x (%d bytes), trace says %s seq %d peer %#x (%d bytes)",
				tm.Line, m.Type, m.Seq, m.Peer, len(tm.Bytes), tm.Type, tm.Seq, tm.Peer, tm.Total)
		}
		var got []TraceAttr
		for _, a := range m.Attrs {
			got = append(got, TraceAttr{ID: a.ID, Len: a.Len()})
		}
		if diff := cmp.Diff(tm.Attrs, got); diff != "" {
			t.Errorf("line %d: attributes differ from the annotation (-trace +decoded):\n%s", tm.Line, diff)
		}
		for _, a := range m.Attrs {
			switch a.ID {
			case AttrData:
				if _, err := blob.ToJSON(a.Data); err != nil {
					t.Errorf("line %d: DATA: %v", tm.Line, err)
				}
			case AttrSignature:
				if _, err := ParseSignature(a.Data); err != nil {
					t.Errorf("line %d: SIGNATURE: %v", tm.Line, err)
				}
			}
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Errorf("line %d: %v", tm.Line, err)
		} else if !bytes.Equal(out, tm.Bytes) {
			t.Errorf("line %d: re-encoded\n got %x\nwant %x", tm.Line, out, tm.Bytes)
		}
		rm, err := ReadMessage(bytes.NewReader(tm.Bytes))
		if err != nil {
			t.Errorf("line %d: ReadMessage: %v", tm.Line, err)
		} else if diff := cmp.Diff(m, rm); diff != "" {
			t.Errorf("line %d: ReadMessage differs from UnmarshalBinary:\n%s", tm.Line, diff)
		}
	}
}

// TestTraceEncode: for every message in the trace that carpd itself would
// send, the builders the Conn uses produce the captured bytes, given the
// same seq and ids.
func TestTraceEncode(t *testing.T) {
	msgs := TraceMessages(t)
	mustJSON := func(j string) []byte {
		t.Helper()
		b, err := blob.FromJSON([]byte(j))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withSeq := func(m Message, err error) Message {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		m.Seq = 1
		return m
	}
	methods := []Method{
		{Name: "hello", Signature: []Arg{{"id", blob.TypeInt32}, {"msg", blob.TypeString}}},
		{Name: "watch", Signature: []Arg{{"id", blob.TypeInt32}, {"counter", blob.TypeInt32}}},
		{Name: "count", Signature: []Arg{{"to", blob.TypeInt32}, {"string", blob.TypeString}}},
	}
	const (
		testObj  = 0x26b57a63 // object "test" in sections 1–3
		listener = 0x5c3ff515 // the anonymous listener object of section 7
	)
	seq := func(m Message, s uint16) Message { m.Seq = s; return m }
	tests := []struct {
		name  string
		trace TraceMsg
		got   Message
	}{
		{"lookup test", TraceFind(t, msgs, "1", "SENT", "LOOKUP", 0),
			seq(lookupMessage("test"), 1)},
		{"lookup all", TraceFind(t, msgs, "5", "SENT", "LOOKUP", 0),
			seq(lookupMessage(""), 1)},
		{"lookup nosuch", TraceFind(t, msgs, "4", "SENT", "LOOKUP", 0),
			seq(lookupMessage("nosuch"), 1)},
		{"invoke count", TraceFind(t, msgs, "1", "SENT", "INVOKE", 0),
			seq(invokeMessage(testObj, "count", mustJSON(`{"to":5,"string":"0 1 2 3 4 "}`)), 2)},
		{"invoke hello", TraceFind(t, msgs, "2", "SENT", "INVOKE", 0),
			seq(invokeMessage(testObj, "hello", mustJSON(`{"id":1,"msg":"hi"}`)), 2)},
		{"invoke without args", TraceFind(t, msgs, "3", "SENT", "INVOKE", 0),
			seq(invokeMessage(testObj, "nosuchmethod", mustJSON(``)), 2)},
		{"add object with signature", TraceFind(t, msgs, "6", "SENT", "ADD_OBJECT", 0),
			withSeq(addObjectMessage("test", methods))},
		{"add anonymous object", TraceFind(t, msgs, "6", "SENT", "ADD_OBJECT", 1),
			seq(Message{Type: MsgAddObject}, 2)},
		{"add listener object", TraceFind(t, msgs, "7", "SENT", "ADD_OBJECT", 0),
			seq(Message{Type: MsgAddObject}, 1)},
		{"register event listener", TraceFind(t, msgs, "7", "SENT", "INVOKE", 0),
			seq(withSeq(registerMessage(listener, "test.event")), 2)},
		{"send event", TraceFind(t, msgs, "8", "SENT", "INVOKE", 0),
			withSeq(sendMessage("test.event", []byte(`{"a":1}`)))},
		{"serve: DATA reply", TraceFind(t, msgs, "1b", "SENT", "DATA", 0),
			dataReply(2, 0x9e478a39, testObj, mustJSON(`{"rc":0}`))},
		{"serve: STATUS reply", TraceFind(t, msgs, "1b", "SENT", "STATUS", 0),
			statusReply(2, 0x9e478a39, testObj, StatusOK)},
		{"serve: DATA reply with string", TraceFind(t, msgs, "2b", "SENT", "DATA", 0),
			dataReply(2, 0x7f666b9a, testObj, mustJSON(`{"message":"test received a message: hi"}`))},
		{"serve: STATUS after DATA", TraceFind(t, msgs, "2b", "SENT", "STATUS", 0),
			statusReply(2, 0x7f666b9a, testObj, StatusOK)},
		{"serve: METHOD_NOT_FOUND", TraceFind(t, msgs, "3-owner", "SENT", "STATUS", 0),
			statusReply(2, 0x7e3d5631, testObj, StatusMethodNotFound)},
		{"event acknowledgement (libubus; carpd skips it)", TraceFind(t, msgs, "7", "SENT", "STATUS", 0),
			statusReply(4, 0, listener, StatusOK)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.trace.Bytes) {
				t.Errorf("trace line %d:\n got %x\nwant %x", tt.trace.Line, out, tt.trace.Bytes)
			}
		})
	}
}

// TestSpecAddObjectExample checks a hand-computed ADD_OBJECT message
// (docs/ubus-protocol.md#exchanges): path "carpd", methods status() and
// failover(vhid:int32).
func TestSpecAddObjectExample(t *testing.T) {
	want := unhex(t, `
		00 06 00 01 00 00 00 00
		00 00 00 44
		02 00 00 0a 63 61 72 70 64 00 00 00
		06 00 00 34
		82 00 00 10 00 06 73 74 61 74 75 73 00 00 00 00
		82 00 00 20 00 08 66 61 69 6c 6f 76 65 72 00 00
		85 00 00 10 00 04 76 68 69 64 00 00 00 00 00 05`)
	m, err := addObjectMessage("carpd", []Method{
		{Name: "status"},
		{Name: "failover", Signature: []Arg{{"vhid", blob.TypeInt32}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Seq = 1
	got, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %x\nwant %x", got, want)
	}
}

// unhex decodes hex with white space.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
