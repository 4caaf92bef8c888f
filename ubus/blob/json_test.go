package blob

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/carpd/carpd/ubus/json"
	"github.com/google/go-cmp/cmp"
)

// TestFromJSONTrace: the DATA payloads the ubus CLI built from its JSON
// arguments (trace sections 1, 2, 8, via blobmsg_add_json_from_string).
func TestFromJSONTrace(t *testing.T) {
	tests := []struct{ json, hex string }{
		{`{"to":5,"string":"0 1 2 3 4 "}`,
			"85000010 0002746f 00000000 00000005 8300001b 00067374 72696e67 00000000 30203120 32203320 34200000"},
		{`{"id":1,"msg":"hi"}`,
			"85000010 00026964 00000000 00000001 8300000f 00036d73 67000000 68690000"},
		{`{"a":1}`, "8500000c 00016100 00000001"},
		{`{"id":"test.event","data":{"a":1}}`,
			"83000017 00026964 00000000 74657374 2e657665 6e740000 82000018 00046461 74610000 8500000c 00016100 00000001"},
	}
	for _, tt := range tests {
		got, err := FromJSON([]byte(tt.json))
		if err != nil {
			t.Fatal(err)
		}
		if w := unhex(t, tt.hex); !bytes.Equal(got, w) {
			t.Errorf("%s:\n got %x\nwant %x", tt.json, got, w)
		}
		back, err := ToJSON(got)
		if err != nil || string(back) != tt.json {
			t.Errorf("ToJSON: %s %v, want %s", back, err, tt.json)
		}
	}
}

// TestFromJSONTypes: blobmsg_add_json_element's type choices.
func TestFromJSONTypes(t *testing.T) {
	in := `{"t":true,"f":false,"n":null,"d":1.5,"e":1e3,"z":-0,
		"i32max":2147483647,"i64":2147483648,"i32min":-2147483648,"i64neg":-2147483649,
		"sat":9223372036854775808,"satneg":-9223372036854775809,
		"s":"x","arr":[1,"a",[],{}],"tbl":{"x":{}}}`
	b, err := FromJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]Type{
		"t": TypeBool, "f": TypeBool, "n": TypeUnspec, "d": TypeDouble, "e": TypeDouble, "z": TypeInt32,
		"i32max": TypeInt32, "i64": TypeInt64, "i32min": TypeInt32, "i64neg": TypeInt64,
		"sat": TypeInt64, "satneg": TypeInt64, "s": TypeString, "arr": TypeArray, "tbl": TypeTable,
	}
	d := NewDecoder(b)
	seen := 0
	for d.Next() {
		seen++
		if wt := wantTypes[d.Name()]; d.Type() != wt {
			t.Errorf("%s: %v, want %v", d.Name(), d.Type(), wt)
		}
		switch d.Name() {
		case "sat":
			want(t, d.Int(), int64(math.MaxInt64))
		case "satneg":
			want(t, d.Int(), int64(math.MinInt64))
		case "arr":
			var types []Type
			d.Array(func(d *Decoder) error {
				for d.Next() {
					types = append(types, d.Type())
				}
				return nil
			})
			if !cmp.Equal(types, []Type{TypeInt32, TypeString, TypeArray, TypeTable}) {
				t.Errorf("array member types %v", types)
			}
		}
	}
	if d.Err() != nil || seen != len(wantTypes) {
		t.Fatalf("%d members, %v", seen, d.Err())
	}
	got, err := ToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"t":true,"f":false,"n":null,"d":1.5,"e":1000.0,"z":0,` +
		`"i32max":2147483647,"i64":2147483648,"i32min":-2147483648,"i64neg":-2147483649,` +
		`"sat":9223372036854775807,"satneg":-9223372036854775808,` +
		`"s":"x","arr":[1,"a",[],{}],"tbl":{"x":{}}}`
	if string(got) != wantJSON {
		t.Errorf("ToJSON:\n got %s\nwant %s", got, wantJSON)
	}
}

func TestFromJSONEmptyAndErrors(t *testing.T) {
	for _, in := range []string{"", "  \n", "null", "{}", " { } "} {
		b, err := FromJSON([]byte(in))
		if err != nil || len(b) != 0 {
			t.Errorf("%q: %x %v", in, b, err)
		}
	}
	for _, in := range []string{`[1]`, `"x"`, `1`, `true`, `{"a":1} x`, `{"a":1}{}`, `{"a":`, `{"a":1,}`, `{a:1}`, `{"a":[1,]}`} {
		if b, err := FromJSON([]byte(in)); err == nil {
			t.Errorf("%q: no error (%x)", in, b)
		}
	}
	if _, err := FromJSON([]byte(`"x"`)); !errors.Is(err, errNotObject) {
		t.Errorf("non-object: %v", err)
	}
	deep := `{"a":` + strings.Repeat(`[`, maxDepth+1) + strings.Repeat(`]`, maxDepth+1) + `}`
	if _, err := FromJSON([]byte(deep)); !errors.Is(err, errDepth) {
		t.Errorf("deep: %v", err)
	}
	ok := `{"a":` + strings.Repeat(`[`, maxDepth-1) + strings.Repeat(`]`, maxDepth-1) + `}`
	b, err := FromJSON([]byte(ok))
	if err != nil {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
	if back, err := ToJSON(b); err != nil || string(back) != ok {
		t.Errorf("depth %d back: %v", maxDepth, err)
	}
}

func TestEncoderJSON(t *testing.T) {
	e := NewEncoder()
	e.String("id", "test.event")
	e.JSON("data", []byte(`{"a":1}`))
	e.JSON("list", []byte(` [true, null, "s"] `))
	e.JSON("num", []byte(`-7`))
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	j, _ := ToJSON(got)
	if w := `{"id":"test.event","data":{"a":1},"list":[true,null,"s"],"num":-7}`; string(j) != w {
		t.Errorf("got %s, want %s", j, w)
	}
	for _, bad := range []string{``, `{`, `1 2`, `[}`} {
		e := NewEncoder()
		e.JSON("x", []byte(bad))
		if e.Err() == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestToJSONFormatting: numbers, escapes and the documented differences
// from blobmsg_format_json.
func TestToJSONFormatting(t *testing.T) {
	e := NewEncoder()
	e.String("s", "q\"b\\n\nt\tb\bc\x01x\xffü/")
	e.Int16("i16", -300)
	for _, f := range []struct {
		name string
		v    float64
	}{{"one", 1}, {"negzero", math.Copysign(0, -1)}, {"big", 1e21}, {"small", 1e-7}, {"tenth", 0.1},
		{"nan", math.NaN()}, {"inf", math.Inf(1)}, {"huge", 123456789012}} {
		e.Float(f.name, f.v)
	}
	e.Array("arr", func(e *Encoder) error { e.Bool("", false); return nil })
	e.Int32("dup", 1)
	e.Int32("dup", 2)
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	const w = `{"s":"q\"b\\n\nt\tb\bc\u0001x` + "\ufffdü/" + `","i16":-300,` +
		`"one":1.0,"negzero":-0.0,"big":1e+21,"small":1e-07,"tenth":0.1,"nan":null,"inf":null,"huge":123456789012.0,` +
		`"arr":[false],"dup":1,"dup":2}`
	if string(got) != w {
		t.Errorf("\n got %s\nwant %s", got, w)
	}
	if !json.Valid(got) {
		t.Error("invalid JSON")
	}
	if _, err := ToJSON(unhex(t, "85000010 0001")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	if got, err := ToJSON(nil); err != nil || string(got) != "{}" {
		t.Errorf("empty: %s %v", got, err)
	}
}

// TestJSONRoundTrip: JSON → blobmsg → JSON keeps text and order, and
// blobmsg → JSON → blobmsg keeps bytes.
func TestJSONRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"state":"MASTER","vhid":5,"master":true,"advbase":1.5,"skew":0}`,
		`{"vips":[{"addr":"192.0.2.1/24","iface":"br-lan"}],"counters":{"rx":4294967296,"tx":-1}}`,
		`{"a":[[[]]],"b":{"c":{"d":null}},"e":"","f":[1.25,-2,true,"x"]}`,
		`{"ünïcode":"✓","esc":"\"\\\n\t\u0001"}`,
	} {
		b, err := FromJSON([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := ToJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(out) != in {
			t.Errorf("JSON round trip:\n got %s\nwant %s", out, in)
		}
		b2, err := FromJSON(out)
		if err != nil || !bytes.Equal(b, b2) {
			t.Errorf("%s: blob round trip differs: %v", in, err)
		}
	}
}

func TestMarshalUnmarshal(t *testing.T) {
	type vip struct {
		Addr  string `json:"addr"`
		Iface string `json:"iface"`
	}
	type status struct {
		State  string  `json:"state"`
		VHID   int     `json:"vhid"`
		Master bool    `json:"master"`
		Skew   float64 `json:"skew"`
		VIPs   []vip   `json:"vips"`
	}
	in := status{State: "MASTER", VHID: 5, Master: true, Skew: 0.5, VIPs: []vip{{"192.0.2.1/24", "br-lan"}}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := ToJSON(b)
	// Struct field order is wire order.
	if w := `{"state":"MASTER","vhid":5,"master":true,"skew":0.5,"vips":[{"addr":"192.0.2.1/24","iface":"br-lan"}]}`; string(j) != w {
		t.Errorf("Marshal: %s", j)
	}
	var out status
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("(-in +out):\n%s", diff)
	}

	// Arguments as rpcd passes them: an extra ubus_rpc_session, and a
	// number of another width.
	e := NewEncoder()
	e.String("ubus_rpc_session", "0123456789abcdef")
	e.Int16("vhid", 7)
	e.Int8("master", 1)
	args, _ := e.Encode()
	var req struct {
		VHID   int64 `json:"vhid"`
		Master bool  `json:"master"`
	}
	if err := Unmarshal(args, &req); err != nil || req.VHID != 7 || !req.Master {
		t.Errorf("lenient args: %+v %v", req, err)
	}

	m, err := Marshal(map[string]any{"b": 1, "a": []any{"x", 2.5}})
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := ToJSON(m); string(j) != `{"a":["x",2.5],"b":1}` {
		t.Errorf("map: %s", j)
	}
	if _, err := Marshal([]int{1}); !errors.Is(err, errNotObject) {
		t.Errorf("slice: %v", err)
	}
	if _, err := Marshal(func() {}); err == nil {
		t.Error("func marshalled")
	}
	if err := Unmarshal(unhex(t, "85000010"), &req); err == nil {
		t.Error("Unmarshal of garbage")
	}
}
