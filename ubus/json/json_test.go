package json_test

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/jsondiff"
	"github.com/carpd/carpd/internal/track"
	json "github.com/carpd/carpd/ubus/json"
)

type inner struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

type Embedded struct {
	X int
	Y string `json:"y"`
	inner
}

type withPtrEmbed struct {
	*Embedded
	Z  bool `json:"z"`
	X  int  // hides Embedded.X
	Y2 int  `json:"y"` // tagged at depth 0: hides Embedded.Y
}

type dup1 struct{ D int }
type dup2 struct{ D int }
type dups struct {
	dup1
	dup2
	E int `json:"e"`
}

type tagged struct {
	Skip     int                `json:"-"`
	Dash     int                `json:"-,"`
	Empty    string             `json:",omitempty"`
	Zero     time.Time          `json:"zero,omitzero"`
	ZeroPtr  *time.Time         `json:"zero_ptr,omitzero"`
	ZeroS    inner              `json:"zero_s,omitzero"`
	Bad      int                `json:"a\"b"`
	Uni      int                `json:"ünï"`
	Ptr      *int               `json:"ptr,omitempty"`
	Iface    any                `json:"iface"`
	Bytes    []byte             `json:"bytes"`
	Arr      [2]uint8           `json:"arr"`
	IntMap   map[int]string     `json:"int_map"`
	UintMap  map[uint8]bool     `json:"uint_map"`
	AddrMap  map[netip.Addr]int `json:"addr_map"`
	Addr     netip.Addr         `json:"addr"`
	Raw      json.RawMessage    `json:"raw"`
	F32      float32            `json:"f32"`
	unexport int
}

func marshalCases() []any {
	seven := 7
	now := time.Date(2026, 12, 8, 1, 2, 3, 450000000, time.UTC)
	return []any{
		nil, true, false, 0, -1, int64(math.MaxInt64), math.MaxInt, uint64(math.MaxUint64), int8(-128),
		0.0, math.Copysign(0, -1), 1.0, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, -1.5e-300, float32(0.1), float32(1e21), float32(3.4e38),
		"", "plain", "<script>&amp;</script>", "\u2028\u2029", "\x00\x01\x1f\x7f", "\b\f\n\r\t\"\\/", "\xff\xc3(\xe2\x82", "é€𝄞",
		[]int(nil), []int{}, []int{1, 2}, [0]int{}, [2]string{"a", "b"}, []byte(nil), []byte{}, []byte("hello!?"), []byte{0xff, 0, 1, 2},
		map[string]int(nil), map[string]int{}, map[string]int{"b": 1, "a": 2, "<": 3, "A": 4, "é": 5},
		map[int]int{10: 1, 9: 2, -1: 3}, map[uint16]string{7: "x"},
		map[netip.Addr]bool{netip.MustParseAddr("10.0.0.2"): true, netip.MustParseAddr("::1"): false},
		inner{A: 1}, &inner{A: 2, B: "x"}, Embedded{X: 1, Y: "y", inner: inner{A: 3}},
		withPtrEmbed{}, withPtrEmbed{Embedded: &Embedded{X: 1, Y: "e"}, Z: true, X: 2, Y2: 3}, dups{E: 1},
		tagged{}, &tagged{Skip: 1, Dash: 2, Empty: "e", Zero: now, ZeroPtr: &now, ZeroS: inner{A: 1}, Ptr: &seven,
			Iface: []any{1, "x", nil, map[string]any{"k": 1.5}}, Bytes: []byte{1}, Arr: [2]uint8{1, 2},
			IntMap: map[int]string{2: "b", 10: "a"}, UintMap: map[uint8]bool{3: true},
			AddrMap: map[netip.Addr]int{netip.MustParseAddr("fe80::1"): 1}, Addr: netip.MustParseAddr("192.0.2.1"),
			Raw: json.RawMessage(" [1 , {\"a\" : \"<\u2028>\"}] "), F32: 0.3},
		now, time.Time{}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", -5*3600-30*60)),
		json.RawMessage(nil), json.RawMessage(`{"a":1}`),
		map[string]any{"z": nil, "a": []any{}, "m": map[string]any{}},
		struct{ P *struct{ Q int } }{}, []*int{nil, &seven}, netip.Addr{}, netip.MustParsePrefix("10.0.0.0/8"),
		// errors
		math.NaN(), math.Inf(1), float32(math.Inf(-1)), make(chan int), func() {}, complex(1, 2),
		map[[2]int]int{{1, 2}: 3}, json.RawMessage(`{bad`), []any{1, math.NaN()},
	}
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	for _, v := range marshalCases() {
		if _, err := jsondiff.Marshal(v); err != nil {
			t.Error(err)
		}
	}
}

func TestEncoderMatchesEncodingJSON(t *testing.T) {
	for _, indent := range []string{"", "  ", "\t"} {
		for _, prefix := range []string{"", ">"} {
			var got, want bytes.Buffer
			ge, we := json.NewEncoder(&got), stdjson.NewEncoder(&want)
			ge.SetIndent(prefix, indent)
			we.SetIndent(prefix, indent)
			for _, v := range marshalCases() {
				gerr, werr := ge.Encode(v), we.Encode(v)
				if (gerr == nil) != (werr == nil) {
					t.Errorf("Encode(%#v): %v, encoding/json: %v", v, gerr, werr)
				}
			}
			if got.String() != want.String() {
				t.Errorf("Encoder with indent %q %q:\n got %s\nwant %s", prefix, indent, got.String(), want.String())
			}
		}
	}
}

var unmarshalInputs = []string{
	``, ` `, `null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `1.5`, `1e3`, `1E+3`, `-2.5e-3`, `123456789012345678901234567890`,
	`1e400`, `"x"`, `"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u2028"`, `"\ud834\udd1e"`, `"\ud834"`, `"\udd1e\ud834x"`, `"\ud834\u0041"`,
	"\"\xff\xfe\"", `[]`, `[1,"a",null,true,{"b":[]}]`, `{}`, `{"a":1,"b":"x","c":[1,2],"d":{"e":null}}`,
	`{"A":1,"a":2}`, `{"B":"x","b":"y"}`, `{"Ünï":1,"ünï":2}`, `{"unknown":{"deep":[1,2,{}]}, "a": 7}`,
	`{"x":1,"y":"s","z":true}`, `{"X":"wrong","a":1}`, `{"a":"str"}`, `{"a":1.5}`, `{"a":99999999999999999999}`,
	`{"int_map":{"1":"a","x":"b","-3":"c"}}`, `{"uint_map":{"300":true,"-1":false,"4":true}}`,
	`{"addr":"10.1.2.3","addr_map":{"::1":5}}`, `{"addr":"bad"}`, `{"addr":12}`, `{"addr":null}`,
	`{"bytes":"aGVsbG8="}`, `{"bytes":"aGVsbG8"}`, `{"bytes":"!!"}`, `{"bytes":null}`, `{"bytes":[1,2]}`,
	`{"arr":[1,2,3]}`, `{"arr":[9]}`, `{"num":1.5e3}`, `{"num":"12"}`, `{"num":"x"}`, `{"raw": [ 1 , 2 ] }`,
	`{"ptr":null,"iface":{"a":[1,"b"]}}`, `{"f32":1e39}`, `{"f32":0.1}`, `{"zero":"2026-12-08T01:02:03.45Z"}`,
	`{"zero":"not a time"}`, `{"y":5,"X":3,"z":true}`, `{"-":1,"Skip":2,"Dash":3}`,
	`{"up":true,"pending":false,"available":true,"autostart":true,"dynamic":false,"uptime":3600,"l3_device":"eth1",` +
		`"proto":"dhcp","device":"eth1","metric":0,"dns_metric":0,"delegation":true,"ipv4-address":[{"address":"192.0.2.10",` +
		`"mask":24}],"ipv6-address":[],"ipv6-prefix":[],"ipv6-prefix-assignment":[],"route":[{"target":"0.0.0.0","mask":0,` +
		`"nexthop":"192.0.2.1","source":"192.0.2.10/32"}],"dns-server":["192.0.2.1"],"dns-search":[],"neighbors":[],` +
		`"inactive":{"ipv4-address":[],"ipv6-address":[],"route":[],"dns-server":[],"dns-search":[],"neighbors":[]},"data":{"leasetime":86400}}`,
	`{"up":false,"device":"br-lan","route":[{"target":"::","mask":"0"}]}`,
	// syntax errors
	`{`, `[`, `[1,`, `{"a"`, `{"a":`, `{"a":1`, `{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`, `{a:1}`, `{,}`, `[,]`, `[1,]`,
	`{"a":1,}`, `tru`, `trux`, `nul`, `fals`, `-`, `-x`, `01`, `1.`, `1.x`, `1e`, `1e+`, `1ex`, `.5`, `+1`, `"abc`,
	"\"a\nb\"", `"\x"`, `"\u12"`, `"\u12x4"`, `1 2`, `{} x`, `[]]`, `'a'`, "\xff", `"\`, `nan`, `[1] [2]`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func targets() map[string]func() any {
	return map[string]func() any{
		"any":      func() any { return new(any) },
		"map":      func() any { return new(map[string]any) },
		"slice":    func() any { return new([]any) },
		"int":      func() any { return new(int) },
		"uint8":    func() any { return new(uint8) },
		"float32":  func() any { return new(float32) },
		"string":   func() any { return new(string) },
		"bool":     func() any { return new(bool) },
		"ptrptr":   func() any { return new(**int) },
		"raw":      func() any { return new(json.RawMessage) },
		"inner":    func() any { return new(inner) },
		"embedded": func() any { return new(withPtrEmbed) },
		"dups":     func() any { return new(dups) },
		"tagged":   func() any { return new(tagged) },
		"time":     func() any { return new(time.Time) },
		"addr":     func() any { return new(netip.Addr) },
		"bytes":    func() any { return new([]byte) },
		"array":    func() any { return new([2]int) },
		"mapint":   func() any { return new(map[int]int) },
		"request":  func() any { return new(daemon.Request) },
		"response": func() any { return new(daemon.Response) },
		"status":   func() any { return new(daemon.Status) },
		"netifd":   func() any { return new(netifdStatus) },
		"prefilled": func() any {
			x := 5
			return &tagged{Empty: "keep", Ptr: &x, IntMap: map[int]string{1: "old"}, Iface: &x}
		},
	}
}

func TestUnmarshalMatchesEncodingJSON(t *testing.T) {
	for _, in := range unmarshalInputs {
		for name, newV := range targets() {
			if err := jsondiff.Unmarshal([]byte(in), newV); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// netifdStatus has the shape internal/track and internal/openwrt read
// from netifd's interface status (their structs are local to functions).
type netifdStatus struct {
	Up       bool              `json:"up"`
	L3Device string            `json:"l3_device"`
	Device   string            `json:"device"`
	IPv4     []json.RawMessage `json:"ipv4-address"`
	IPv6     []json.RawMessage `json:"ipv6-address"`
	Route    []struct {
		Target string `json:"target"`
		Mask   int    `json:"mask"`
	} `json:"route"`
}

type numbers struct {
	N json.Number
	P *json.Number
	M map[string]json.Number
}

type stdNumbers struct {
	N stdjson.Number
	P *stdjson.Number
	M map[string]stdjson.Number
}

// TestNumber compares Number with encoding/json's (each package knows
// only its own Number type).
func TestNumber(t *testing.T) {
	for _, s := range []string{"12", "", "-0", "1.5e3", "1x", "0x10", "+1", "01"} {
		got, gerr := json.Marshal(numbers{N: json.Number(s)})
		want, werr := stdjson.Marshal(stdNumbers{N: stdjson.Number(s)})
		if string(got) != string(want) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Errorf("Marshal(Number(%q)) = %s %v, want %s %v", s, got, gerr, want, werr)
		}
	}
	for _, in := range append([]string{`{"N":"12","P":3.5,"M":{"a":"1e2","b":-1}}`, `{"N":"x"}`, `{"N":true}`, `{"M":{"a":"01"}}`}, unmarshalInputs...) {
		var g numbers
		var w stdNumbers
		gerr, werr := json.Unmarshal([]byte(in), &g), stdjson.Unmarshal([]byte(in), &w)
		gs, ws := fmt.Sprint(g.N, g.P != nil, g.M), fmt.Sprint(w.N, w.P != nil, w.M)
		if gs != ws || fmt.Sprint(gerr) != strings.ReplaceAll(fmt.Sprint(werr), "stdNumbers", "numbers") {
			t.Errorf("Unmarshal(%q) into Numbers = %s %v, want %s %v", in, gs, gerr, ws, werr)
		}
	}
}

func TestUnmarshalInvalidTarget(t *testing.T) {
	for _, v := range []any{nil, 1, (*int)(nil), map[string]any{}} {
		gerr, werr := json.Unmarshal([]byte(`1`), v), stdjson.Unmarshal([]byte(`1`), v)
		if gerr == nil || gerr.Error() != werr.Error() {
			t.Errorf("Unmarshal into %T: %v, want %v", v, gerr, werr)
		}
	}
}

// TestRealTypes fills carpd's status and control types with every field
// set and compares both ways.
func TestRealTypes(t *testing.T) {
	for seed := range uint64(40) {
		for _, err := range []error{
			jsondiff.RoundTrip[daemon.Status](seed),
			jsondiff.RoundTrip[daemon.Request](seed),
			jsondiff.RoundTrip[daemon.Response](seed),
			jsondiff.RoundTrip[daemon.MaintenanceResult](seed),
			jsondiff.RoundTrip[carp.Status](seed),
			jsondiff.RoundTrip[ctsync.Status](seed),
			jsondiff.RoundTrip[track.Status](seed),
			jsondiff.RoundTrip[tagged](seed),
			jsondiff.RoundTrip[withPtrEmbed](seed),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

type decodeStep struct {
	tok any
	err string
}

// decodeAll runs a Decoder of either package over in, as blob.FromJSON
// and the control socket use it: tokens or whole values.
func decodeAll(in string, oneByte, useNumber, tokens bool, std bool) []decodeStep {
	var r io.Reader = strings.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	var out []decodeStep
	add := func(v any, err error) bool {
		s := decodeStep{tok: v}
		if err != nil {
			s.err = err.Error()
			if errors.Is(err, io.EOF) {
				s.err = "EOF"
			}
		}
		switch x := v.(type) {
		case stdjson.Delim:
			s.tok = "delim " + x.String()
		case json.Delim:
			s.tok = "delim " + x.String()
		case stdjson.Number:
			s.tok = "number " + string(x)
		case json.Number:
			s.tok = "number " + string(x)
		}
		out = append(out, s)
		return err == nil && len(out) < 1000
	}
	if std {
		d := stdjson.NewDecoder(r)
		if useNumber {
			d.UseNumber()
		}
		for {
			if tokens {
				more := d.More()
				tok, err := d.Token()
				if !add(fmt.Sprint(more, tok), err) {
					return out
				}
				continue
			}
			var v any
			if !add(v, d.Decode(&v)) {
				return out
			}
			out[len(out)-1].tok = fmt.Sprintf("%#v", v)
		}
	}
	d := json.NewDecoder(r)
	if useNumber {
		d.UseNumber()
	}
	for {
		if tokens {
			more := d.More()
			tok, err := d.Token()
			if !add(fmt.Sprint(more, tok), err) {
				return out
			}
			continue
		}
		var v any
		if !add(v, d.Decode(&v)) {
			return out
		}
		out[len(out)-1].tok = fmt.Sprintf("%#v", v)
	}
}

func checkDecoder(t *testing.T, in string) {
	t.Helper()
	for _, oneByte := range []bool{false, true} {
		for _, useNumber := range []bool{false, true} {
			for _, tokens := range []bool{false, true} {
				got := decodeAll(in, oneByte, useNumber, tokens, false)
				want := decodeAll(in, oneByte, useNumber, tokens, true)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Decoder(%q) oneByte=%v useNumber=%v tokens=%v:\n got %v\nwant %v", in, oneByte, useNumber, tokens, got, want)
				}
			}
		}
	}
}

func TestDecoderMatchesEncodingJSON(t *testing.T) {
	for _, in := range unmarshalInputs {
		if len(in) > 1000 {
			continue
		}
		checkDecoder(t, in)
	}
	for _, in := range []string{
		`{"method":"status"}` + "\n", `{"a":1} {"b":2}` + "\n" + `[3] 4 "five" null`, `1 2 3`, `"a""b"`, `truefalse`,
		`{"a":[1,{"b":"c"}],"d":2.5e10}`, `[1,2]]`, `{"a":1}}`, `{"a" 1}`, `[1 2]`, ` `, "\n\t",
	} {
		checkDecoder(t, in)
	}
}

// TestDecodeRequest is the control socket's use: a request read from a
// stream, with type errors reported like encoding/json's.
func TestDecodeRequest(t *testing.T) {
	for _, in := range []string{
		`{"method":"demote","vhid":3,"by":10}`, `{"method":"demote","vhid":300}`, `{"method":1}`,
		`{"method":"maintenance","enable":"yes"}`, `{"set":null,"ttl":1.5}`, `{"method":"x"`,
	} {
		var gr, wr daemon.Request
		gerr := json.NewDecoder(strings.NewReader(in)).Decode(&gr)
		werr := stdjson.NewDecoder(strings.NewReader(in)).Decode(&wr)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(gr, wr) {
			t.Errorf("Decode(%q): %+v %v, want %+v %v", in, gr, gerr, wr, werr)
		}
	}
}

// hostile is a reader that never ends: the decoder must stop at the
// first syntax error, not read on.
type hostile struct{ n int }

func (h *hostile) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '['
	}
	h.n += len(p)
	if h.n > 1<<20 {
		return 0, errors.New("read too far")
	}
	return len(p), nil
}

func TestDecoderDepthLimit(t *testing.T) {
	var v any
	err := json.NewDecoder(&hostile{}).Decode(&v)
	if err == nil || err.Error() != "invalid character '[' exceeded max depth" {
		t.Fatalf("Decode of endless [: %v", err)
	}
}

func stdUnmarshal(data []byte, v any) error { return stdjson.Unmarshal(data, v) }
