package blob

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// unhex decodes hex with white space and '|' separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer("|", "", " ", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAlign(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 4, 3: 4, 4: 4, 5: 8, 19: 20, 20: 20} {
		if got := Align(n); got != want {
			t.Errorf("Align(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestAttrHeader: id, extended bit, length and padding of plain attributes.
func TestAttrHeader(t *testing.T) {
	tests := []struct {
		name string
		attr Attr
		hex  string
	}{
		{"empty message blob", Attr{}, "00000004"},
		{"empty DATA", Attr{ID: 7}, "07000004"},
		{"int32 OBJID", Attr{ID: 3, Data: []byte{0x26, 0xb5, 0x7a, 0x63}}, "03000008 26b57a63"},
		{"string padded", Attr{ID: 2, Data: []byte("test\x00")}, "02000009 7465737400 000000"},
		{"int8 padded", Attr{ID: 10, Data: []byte{1}}, "0a000005 01 000000"},
		{"extended, max id", Attr{ID: MaxID, Extended: true, Data: []byte{1, 2, 3, 4}}, "ff000008 01020304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.hex)
			got, err := tt.attr.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("marshal: got %x, want %x", got, want)
			}
			if tt.attr.Len() != int(want[3]) {
				t.Errorf("Len %d, header says %d", tt.attr.Len(), want[3])
			}
			var a Attr
			if err := a.UnmarshalBinary(want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.attr, a, cmp.Comparer(func(x, y []byte) bool { return bytes.Equal(x, y) })); diff != "" {
				t.Errorf("unmarshal (-want +got):\n%s", diff)
			}
			// A lone attribute may come without its padding.
			if err := a.UnmarshalBinary(want[:tt.attr.Len()]); err != nil {
				t.Errorf("unpadded: %v", err)
			}
		})
	}
}

func TestAttrErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", io.ErrUnexpectedEOF},
		{"short header", "000000", io.ErrUnexpectedEOF},
		{"length below header", "03000003", errAttrLen},
		{"length zero", "03000000", errAttrLen},
		{"truncated payload", "03000008 2600", io.ErrUnexpectedEOF},
		{"trailing attribute", "07000004 07000004", errTrailing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Attr
			if err := a.UnmarshalBinary(unhex(t, tt.hex)); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	// In a sequence, every attribute but none may lack its padding.
	if _, err := ParseAttrs(unhex(t, "0a000005 01")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("unpadded in sequence: %v", err)
	}
	if _, err := (Attr{ID: 200}).MarshalBinary(); !errors.Is(err, errAttrLen) {
		t.Errorf("id 200: %v", err)
	}
	if _, err := (Attr{Data: make([]byte, MaxLen)}).MarshalBinary(); !errors.Is(err, errAttrLen) {
		t.Errorf("oversized: %v", err)
	}
}

// TestAttrDecoder: the plain iterator and its sticky error.
func TestAttrDecoder(t *testing.T) {
	b := unhex(t, `
		01000008 00000003
		02000009 74657374 00000000
		0a000005 01000000
		0b00000c 0000000a 11223344
		06000006 abcd0000
		07000014 85000010 00027263 00000000 00000000`)
	d := NewAttrDecoder(b)
	var got []string
	for d.Next() {
		switch d.ID() {
		case 1:
			if d.Uint32() != 3 {
				t.Error("status")
			}
		case 2:
			got = append(got, d.String())
		case 10:
			if d.Uint8() != 1 {
				t.Error("int8")
			}
		case 11:
			if d.Uint64() != 0x0000000a11223344 {
				t.Error("int64")
			}
		case 6:
			if d.Uint16() != 0xabcd {
				t.Error("int16")
			}
		case 7:
			d.Blobmsg(func(d *Decoder) error {
				for d.Next() {
					got = append(got, d.Name())
				}
				return nil
			})
		}
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"test", "rc"}; !cmp.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	// A size mismatch sticks and ends the iteration.
	d = NewAttrDecoder(unhex(t, "03000005 01000000 03000008 00000001"))
	n := 0
	for d.Next() {
		n++
		_ = d.Uint32()
	}
	if n != 1 || !errors.Is(d.Err(), errValueLen) {
		t.Errorf("visited %d, err %v", n, d.Err())
	}
	d = NewAttrDecoder(unhex(t, "02000008 61626364"))
	for d.Next() {
		_ = d.String()
	}
	if !errors.Is(d.Err(), errValueLen) {
		t.Errorf("unterminated string: %v", d.Err())
	}
	d = NewAttrDecoder(unhex(t, "0600000c 03000005 01000000"))
	for d.Next() {
		d.Nested(func(d *AttrDecoder) error {
			for d.Next() {
				_ = d.Uint32()
			}
			return nil
		})
	}
	if !errors.Is(d.Err(), errValueLen) {
		t.Errorf("nested error not propagated: %v", d.Err())
	}
}

// TestAttrEncoder mirrors TestAttrDecoder.
func TestAttrEncoder(t *testing.T) {
	e := NewAttrEncoder()
	e.Uint32(1, 3)
	e.String(2, "test")
	e.Uint8(10, 1)
	e.Uint64(11, 0x0000000a11223344)
	e.Uint16(6, 0xabcd)
	e.Blobmsg(7, func(e *Encoder) error {
		e.Int32("rc", 0)
		return nil
	})
	e.Nested(11, func(e *AttrEncoder) error {
		e.Uint32(0, 1)
		e.Bytes(0, nil)
		return nil
	})
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		01000008 00000003
		02000009 74657374 00000000
		0a000005 01000000
		0b00000c 0000000a 11223344
		06000006 abcd0000
		07000014 85000010 00027263 00000000 00000000
		0b000010 00000008 00000001 00000004`)
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %x\nwant %x", got, want)
	}

	// Errors stick, also from inside a container.
	e = NewAttrEncoder()
	e.Nested(6, func(*AttrEncoder) error { return errType })
	e.Uint32(1, 0)
	if _, err := e.Encode(); !errors.Is(err, errType) {
		t.Errorf("err %v", err)
	}
	// Like blob_put_string's strlen, an embedded NUL ends the string.
	e = NewAttrEncoder()
	e.String(2, "ab\x00cd")
	if got, _ := e.Encode(); !bytes.Equal(got, unhex(t, "02000007 61620000")) {
		t.Errorf("NUL: %x", got)
	}
}
