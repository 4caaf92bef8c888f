package blob

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// TestBlobmsgTypes: every type, encoded as libubox does and decoded back.
// The first four are hand-worked examples of the encoding.
func TestBlobmsgTypes(t *testing.T) {
	tests := []struct {
		name   string
		encode func(e *Encoder)
		hex    string
		check  func(t *testing.T, d *Decoder)
	}{
		{"STRING", func(e *Encoder) { e.String("state", "MASTER") },
			"83000013 | 0005 7374617465 00 | 4d4153544552 00 | 00",
			func(t *testing.T, d *Decoder) { want(t, d.String(), "MASTER") }},
		{"INT32", func(e *Encoder) { e.Int32("vhid", 5) },
			"85000010 | 0004 76686964 00 00 | 00000005",
			func(t *testing.T, d *Decoder) { want(t, d.Int(), int64(5)) }},
		{"BOOL", func(e *Encoder) { e.Bool("master", true) },
			"87000011 | 0006 6d6173746572 00 000000 | 01 | 000000",
			func(t *testing.T, d *Decoder) { want(t, d.Bool(), true) }},
		{"array member", func(e *Encoder) {
			e.Array("", func(e *Encoder) error { e.String("", "a"); return nil })
		},
			"81000014 | 0000 00 00 | 8300000a | 0000 0000 | 6100 | 0000",
			func(t *testing.T, d *Decoder) {
				d.Array(func(d *Decoder) error {
					if !d.Next() {
						t.Fatal("no member")
					}
					want(t, d.Name(), "")
					want(t, d.String(), "a")
					return nil
				})
			}},
		{"INT64", func(e *Encoder) { e.Int64("n", 1<<40) },
			"84000010 | 0001 6e 00 | 00000100 00000000",
			func(t *testing.T, d *Decoder) { want(t, d.Int(), int64(1<<40)) }},
		{"INT16", func(e *Encoder) { e.Int16("n", -2) },
			"8600000a | 0001 6e 00 | fffe | 0000",
			func(t *testing.T, d *Decoder) { want(t, d.Int(), int64(-2)) }},
		{"INT8", func(e *Encoder) { e.Int8("n", -1) },
			"87000009 | 0001 6e 00 | ff | 000000",
			func(t *testing.T, d *Decoder) { want(t, d.Int(), int64(255)) }},
		{"DOUBLE", func(e *Encoder) { e.Float("d", 1.5) },
			"88000010 | 0001 64 00 | 3ff80000 00000000",
			func(t *testing.T, d *Decoder) { want(t, d.Float(), 1.5) }},
		{"UNSPEC", func(e *Encoder) { e.Unspec("u") },
			"80000008 | 0001 75 00",
			func(t *testing.T, d *Decoder) { want(t, len(d.Bytes()), 0) }},
		{"empty TABLE", func(e *Encoder) { e.Table("t", func(*Encoder) error { return nil }) },
			"82000008 | 0001 74 00",
			func(t *testing.T, d *Decoder) {
				d.Table(func(d *Decoder) error {
					if d.Next() {
						t.Error("member in empty table")
					}
					return nil
				})
			}},
		{"TABLE from trace section 8", func(e *Encoder) {
			e.Table("data", func(e *Encoder) error { e.Int32("a", 1); return nil })
		},
			"82000018 | 0004 64617461 00 00 | 8500000c 0001 61 00 00000001",
			func(t *testing.T, d *Decoder) {
				d.Table(func(d *Decoder) error {
					for d.Next() {
						want(t, d.Name(), "a")
						want(t, d.Int(), int64(1))
					}
					return nil
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEncoder()
			tt.encode(e)
			got, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if w := unhex(t, tt.hex); !bytes.Equal(got, w) {
				t.Fatalf("encoded\n got %x\nwant %x", got, w)
			}
			d := NewDecoder(got)
			if !d.Next() {
				t.Fatalf("Next: %v", d.Err())
			}
			if !d.Extended() || d.Type() != Type(got[0]&0x7f) {
				t.Errorf("type %v extended %v", d.Type(), d.Extended())
			}
			tt.check(t, d)
			if d.Next() {
				t.Error("more than one attribute")
			}
			if err := d.Err(); err != nil {
				t.Error(err)
			}
		})
	}
}

func want[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestNameHeaderLen: blobmsg_hdrlen pads 2 + namelen + 1 to 4.
func TestNameHeaderLen(t *testing.T) {
	for namelen, wantLen := range map[int]int{0: 4, 1: 4, 2: 8, 5: 8, 6: 12, 9: 12, 10: 16} {
		e := NewEncoder()
		e.Unspec(strings.Repeat("n", namelen))
		b, _ := e.Encode()
		if got := len(b) - HeaderLen; got != wantLen || nameHeaderLen(namelen) != wantLen {
			t.Errorf("namelen %d: header %d bytes (nameHeaderLen %d), want %d", namelen, got, nameHeaderLen(namelen), wantLen)
		}
		d := NewDecoder(b)
		if !d.Next() || d.Name() != strings.Repeat("n", namelen) {
			t.Errorf("namelen %d: decoded %q, %v", namelen, d.Name(), d.Err())
		}
	}
}

// TestDecoderLenient: integers of any width, bools from any integer,
// members without the extended bit.
func TestDecoderLenient(t *testing.T) {
	e := NewEncoder()
	e.Int8("i8", 1)
	e.Int16("i16", -300)
	e.Int32("i32", -2) // an object id ≥ 2^31 as libubus sends it
	e.Int64("i64", math.MaxInt64)
	e.Int32("zero", 0)
	b, _ := e.Encode()
	d := NewDecoder(b)
	type row struct {
		i    int64
		u    uint64
		bool bool
		f    float64
	}
	wants := map[string]row{
		"i8":   {1, 1, true, 1},
		"i16":  {-300, 0xfed4, true, -300},
		"i32":  {-2, 0xfffffffe, true, -2},
		"i64":  {math.MaxInt64, math.MaxInt64, true, math.MaxInt64},
		"zero": {0, 0, false, 0},
	}
	for d.Next() {
		got := row{d.Int(), d.Uint(), d.Bool(), d.Float()}
		if got != wants[d.Name()] {
			t.Errorf("%s: %+v, want %+v", d.Name(), got, wants[d.Name()])
		}
	}
	if d.Err() != nil {
		t.Fatal(d.Err())
	}

	// An array member without the extended bit: no name header.
	d = NewDecoder(unhex(t, "03000006 6100 0000"))
	if !d.Next() || d.Extended() || d.Type() != TypeString || d.Name() != "" || d.String() != "a" {
		t.Errorf("plain member: %v %v %q %v", d.Extended(), d.Type(), d.Name(), d.Err())
	}
	// C strings end at the first NUL.
	d = NewDecoder(unhex(t, "8300000c 0001 6e 00 61 00 62 00"))
	if !d.Next() || d.String() != "a" {
		t.Errorf("embedded NUL: %q %v", d.String(), d.Err())
	}
}

func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		name, hex string
		want      error
	}{
		{"unknown type", "89000008 0001 6e 00", errType},
		{"INT32 of 2 bytes", "8500000a 0001 6e 00 0001 0000", errValueLen},
		{"INT8 of 2 bytes", "8700000a 0001 6e 00 0001 0000", errValueLen},
		{"DOUBLE of 4 bytes", "8800000c 0001 6e 00 00000000", errValueLen},
		{"STRING without NUL", "8300000a 0001 6e 00 6162 0000", errValueLen},
		{"empty STRING", "83000008 0001 6e 00", errValueLen},
		{"name without NUL", "85000010 0002 6e6e 61 000000 00000001", errName},
		{"short name header", "83000005 00 000000", io.ErrUnexpectedEOF},
		{"name beyond attribute", "83000008 00ff 0000", io.ErrUnexpectedEOF},
		{"truncated", "85000010 0001 6e 00", io.ErrUnexpectedEOF},
		{"bad member in table", "8200000c 0001 74 00 09000004", errType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ToJSON(unhex(t, tt.hex)); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}

	// Getter type mismatches stick and end the iteration.
	e := NewEncoder()
	e.Int32("a", 1)
	e.Int32("b", 2)
	b, _ := e.Encode()
	d := NewDecoder(b)
	n := 0
	for d.Next() {
		n++
		_ = d.String()
	}
	if n != 1 || !errors.Is(d.Err(), errType) {
		t.Errorf("visited %d, err %v", n, d.Err())
	}
	d = NewDecoder(b)
	d.Next()
	d.Table(func(*Decoder) error { return nil })
	if !errors.Is(d.Err(), errType) {
		t.Errorf("Table on INT32: %v", d.Err())
	}
	for _, get := range []func(d *Decoder){
		func(d *Decoder) { d.Int() }, func(d *Decoder) { d.Uint() }, func(d *Decoder) { d.Float() },
	} {
		e := NewEncoder()
		e.String("s", "x")
		b, _ := e.Encode()
		d := NewDecoder(b)
		d.Next()
		get(d)
		if !errors.Is(d.Err(), errType) {
			t.Errorf("number getter on STRING: %v", d.Err())
		}
	}
	// Getters after an error return zero values instead of panicking.
	d = NewDecoder(unhex(t, "8500000a 0001 6e 00 0001 0000"))
	if d.Next() || d.Int() != 0 || d.Uint() != 0 || d.Float() != 0 || d.String() != "" {
		t.Error("getters after error")
	}
}

func TestEncoder(t *testing.T) {
	// Array members lose their names; names and strings stop at NUL.
	e := NewEncoder()
	e.Array("a", func(e *Encoder) error {
		e.String("dropped", "x")
		e.Int32("also", 1)
		return nil
	})
	e.String("k\x00ey", "v\x00alue")
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	j, err := ToJSON(got)
	if err != nil || string(j) != `{"a":["x",1],"k":"v"}` {
		t.Errorf("got %s %v", j, err)
	}
	d := NewDecoder(got)
	d.Next()
	d.Array(func(d *Decoder) error {
		for d.Next() {
			if d.Name() != "" {
				t.Errorf("array member named %q", d.Name())
			}
		}
		return nil
	})

	tests := []struct {
		name   string
		encode func(e *Encoder)
		want   error
	}{
		{"Raw INT32 of 3 bytes", func(e *Encoder) { e.Raw(TypeInt32, "n", []byte{1, 2, 3}) }, errValueLen},
		{"Raw unknown type", func(e *Encoder) { e.Raw(9, "n", nil) }, errType},
		{"Raw string without NUL", func(e *Encoder) { e.Raw(TypeString, "n", []byte("x")) }, errValueLen},
		{"name too long", func(e *Encoder) { e.Unspec(strings.Repeat("n", MaxNameLen+1)) }, errName},
		{"error from fn", func(e *Encoder) { e.Table("t", func(*Encoder) error { return errNotObject }) }, errNotObject},
		{"too deep", func(e *Encoder) {
			var nest func(e *Encoder) error
			nest = func(e *Encoder) error { e.Table("t", nest); return nil }
			_ = nest(e)
		}, errDepth},
		{"too long", func(e *Encoder) { e.Raw(TypeUnspec, "n", make([]byte, MaxLen)) }, errAttrLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEncoder()
			tt.encode(e)
			e.Int32("after", 1) // errors stick
			if _, err := e.Encode(); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			if !errors.Is(e.Err(), tt.want) {
				t.Errorf("Err %v", e.Err())
			}
		})
	}

	// Raw keeps valid prepared values, including a table's content.
	inner := NewEncoder()
	inner.Int32("a", 1)
	content, _ := inner.Encode()
	e = NewEncoder()
	e.Raw(TypeTable, "data", content)
	got, _ = e.Encode()
	if w := unhex(t, "82000018 0004 64617461 0000 8500000c 0001 6100 00000001"); !bytes.Equal(got, w) {
		t.Errorf("Raw table: %x", got)
	}
}

func TestTypeString(t *testing.T) {
	want(t, TypeBool.String(), "INT8")
	want(t, TypeDouble.String(), "DOUBLE")
	want(t, Type(42).String(), "Type(42)")
}
