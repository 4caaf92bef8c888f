package blob_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"testing"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/blob"
	"github.com/carpd/carpd/ubus/json"
	"github.com/google/go-cmp/cmp"
)

// traceSeeds returns, from the real captures in ../testdata/trace.txt, every
// message blob (seeds for FuzzBlobAttr) and every DATA and SIGNATURE payload
// (seeds for FuzzBlobmsg).
func traceSeeds(f *testing.F) (blobs, members [][]byte) {
	f.Helper()
	text, err := os.ReadFile("../testdata/trace.txt")
	if err != nil {
		f.Fatal(err)
	}
	dumps := regexp.MustCompile(`(?m)^\s+hex: ([0-9a-f]+)$`).FindAllSubmatch(text, -1)
	if len(dumps) != 53 { // see ubus.TraceMessageCount
		f.Fatalf("found %d hex dumps in trace.txt, want 53", len(dumps))
	}
	for _, d := range dumps {
		b, err := hex.DecodeString(string(d[1]))
		if err != nil {
			f.Fatal(err)
		}
		var m ubus.Message
		if err := m.UnmarshalBinary(b); err != nil {
			f.Fatal(err)
		}
		blobs = append(blobs, b[ubus.HeaderLen:])
		for _, a := range m.Attrs {
			if a.ID == ubus.AttrData || a.ID == ubus.AttrSignature {
				members = append(members, a.Data)
			}
		}
	}
	return blobs, members
}

// FuzzBlobAttr: Attr.UnmarshalBinary never panics, and what it accepts
// re-encodes to the same header and payload and decodes to the same Attr.
// ParseAttrs over the same bytes round-trips through AttrEncoder.
func FuzzBlobAttr(f *testing.F) {
	blobs, members := traceSeeds(f)
	for _, b := range append(blobs, members...) {
		f.Add(b)
	}
	f.Add([]byte{0x03, 0x00, 0x00, 0x05, 0x01})       // unpadded lone int8
	f.Add([]byte{0x83, 0x00, 0x00, 0x03, 0x00, 0x00}) // length below header
	f.Fuzz(func(t *testing.T, b []byte) {
		var a blob.Attr
		if err := a.UnmarshalBinary(b); err == nil {
			out, err := a.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out[:a.Len()], b[:a.Len()]) || len(out) != blob.Align(a.Len()) {
				t.Fatalf("re-encode differs:\n got %x\n  in %x", out, b)
			}
			var a2 blob.Attr
			if err := a2.UnmarshalBinary(out); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, a2); diff != "" {
				t.Fatalf("round trip (-first +second):\n%s", diff)
			}
		}

		attrs, err := blob.ParseAttrs(b)
		if err != nil {
			return
		}
		e := blob.NewAttrEncoder()
		for _, a := range attrs {
			e.Attr(a)
		}
		out, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(b) {
			t.Fatalf("sequence re-encoded to %d bytes, was %d", len(out), len(b))
		}
		attrs2, err := blob.ParseAttrs(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(attrs, attrs2, cmp.Comparer(func(x, y []byte) bool { return bytes.Equal(x, y) })); diff != "" {
			t.Fatalf("sequence round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzBlobmsg: the Decoder never panics, and blobmsg members it accepts (as
// ToJSON does) copy through the Encoder to a canonical form that is a fixed
// point, means the same JSON, and survives JSON → blobmsg → JSON.
func FuzzBlobmsg(f *testing.F) {
	_, members := traceSeeds(f)
	for _, b := range members {
		f.Add(b)
	}
	for _, j := range []string{
		`{"t":true,"n":null,"d":-1.5e300,"i":2147483648,"s":"x\u0000y","a":[1,[{}]]}`,
		`{"vips":[{"addr":"192.0.2.1/24"}],"nan":1e999}`,
	} {
		b, err := blob.FromJSON([]byte(j))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x03, 0x00, 0x00, 0x06, 'a', 0, 0, 0})                                    // member without extended bit
	f.Add([]byte{0x86, 0x00, 0x00, 0x0a, 0x00, 0x01, 'n', 0, 0xff, 0xfe, 0, 0})            // INT16
	f.Add([]byte{0x81, 0x00, 0x00, 0x10, 0x00, 0x01, 'a', 0, 0x80, 0, 0, 8, 0, 1, 'x', 0}) // named array member
	// Regressions (also in testdata/fuzz/FuzzBlobmsg): a truncated header
	// that canonical once ignored, and a name with an embedded NUL, which
	// the Decoder returned whole while the Encoder cut it (both now cut it,
	// as C's blobmsg_name does).
	f.Add([]byte("0"))
	f.Add([]byte("\x85\x00\x00\x10\x00\x020\x00\x000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := blob.ToJSON(b)
		c1, cerr := canonical(b)
		if err != nil {
			if cerr == nil {
				t.Fatalf("ToJSON failed (%v) but the Decoder walk succeeded", err)
			}
			return
		}
		if cerr != nil {
			t.Fatalf("ToJSON succeeded but the Decoder walk failed: %v", cerr)
		}
		if !json.Valid(j) {
			t.Fatalf("invalid JSON %q", j)
		}
		c2, err := canonical(c1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form is not a fixed point:\n%x\n%x", c1, c2)
		}
		j1, err := blob.ToJSON(c1)
		if err != nil || !bytes.Equal(j, j1) {
			t.Fatalf("canonical form reads differently: %s vs %s (%v)", j, j1, err)
		}
		// JSON → blobmsg → JSON is stable once the types are JSON's.
		fj, err := blob.FromJSON(j)
		if err != nil {
			t.Fatalf("FromJSON(%s): %v", j, err)
		}
		j2, err := blob.ToJSON(fj)
		if err != nil {
			t.Fatal(err)
		}
		fj2, err := blob.FromJSON(j2)
		if err != nil || !bytes.Equal(fj, fj2) {
			t.Fatalf("JSON round trip unstable: %s → %s (%v)", j, j2, err)
		}
	})
}

// canonical copies blobmsg members value by value through the Decoder and
// the Encoder, exercising every getter and setter.
func canonical(b []byte) ([]byte, error) {
	e := blob.NewEncoder()
	if err := copyMembers(blob.NewDecoder(b), e); err != nil {
		return nil, err
	}
	return e.Encode()
}

func copyMembers(d *blob.Decoder, e *blob.Encoder) error {
	for d.Next() {
		name := d.Name()
		switch d.Type() {
		case blob.TypeTable:
			d.Table(func(nd *blob.Decoder) error {
				var err error
				e.Table(name, func(ne *blob.Encoder) error { err = copyMembers(nd, ne); return err })
				return err
			})
		case blob.TypeArray:
			d.Array(func(nd *blob.Decoder) error {
				var err error
				e.Array(name, func(ne *blob.Encoder) error { err = copyMembers(nd, ne); return err })
				return err
			})
		case blob.TypeString:
			e.String(name, d.String())
		case blob.TypeInt64:
			e.Int64(name, d.Int())
		case blob.TypeInt32:
			e.Int32(name, int32(d.Int()))
		case blob.TypeInt16:
			e.Int16(name, int16(d.Int()))
		case blob.TypeInt8:
			e.Int8(name, int8(d.Uint()))
		case blob.TypeDouble:
			e.Float(name, d.Float())
		default:
			e.Raw(d.Type(), name, d.Bytes())
		}
	}
	return d.Err()
}

// FuzzFromJSON: FromJSON never panics, and what it accepts formats back to
// JSON that is a fixed point of FromJSON → ToJSON. (Bytes may change once:
// an overflowing number becomes an infinite DOUBLE, which prints as null.)
func FuzzFromJSON(f *testing.F) {
	for _, j := range []string{
		`{"to":5,"string":"0 1 2 3 4 "}`, `{"a":1}`, `{}`, `null`, ``,
		`{"x":[1,2.5,"s",true,null,{"y":-9223372036854775809}]}`, `{"a":1e400}`, `[1]`,
	} {
		f.Add([]byte(j))
	}
	f.Fuzz(func(t *testing.T, j []byte) {
		b, err := blob.FromJSON(j)
		if err != nil {
			return
		}
		out1, err := blob.ToJSON(b)
		if err != nil {
			t.Fatalf("ToJSON of FromJSON(%q): %v", j, err)
		}
		b2, err := blob.FromJSON(out1)
		if err != nil {
			t.Fatalf("FromJSON(%s): %v", out1, err)
		}
		out2, err := blob.ToJSON(b2)
		if err != nil || !bytes.Equal(out1, out2) {
			t.Fatalf("%q: %s then %s (%v)", j, out1, out2, err)
		}
	})
}
