package blob

import (
	"bytes"
	"encoding/binary"
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

// attrStream is a sequence of plain attributes as a ubus message carries
// them: a status, a string, ints of every width and a blobmsg table.
const attrStream = `
		01000008 00000003
		02000009 74657374 00000000
		0a000005 01000000
		0b00000c 0000000a 11223344
		06000006 abcd0000
		07000014 85000010 00027263 00000000 00000000`

// TestParseAttrs: the plain attribute sequence, and its error on a truncated
// attribute after a good one.
func TestParseAttrs(t *testing.T) {
	attrs, err := ParseAttrs(unhex(t, attrStream))
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint8
	for _, a := range attrs {
		ids = append(ids, a.ID)
	}
	if want := []uint8{1, 2, 10, 11, 6, 7}; !cmp.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if got := binary.BigEndian.Uint64(attrs[3].Data); got != 0x0000000a11223344 {
		t.Errorf("int64 %#x", got)
	}
	d := NewDecoder(attrs[5].Data)
	if !d.Next() || d.Name() != "rc" || d.Next() || d.Err() != nil {
		t.Errorf("blobmsg payload: %v", d.Err())
	}

	attrs, err = ParseAttrs(unhex(t, "03000005 01000000 0300000c 00000001"))
	if len(attrs) != 1 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %d attrs, err %v", len(attrs), err)
	}
}

// TestAttrEncoder encodes what TestParseAttrs decodes, plus a container.
func TestAttrEncoder(t *testing.T) {
	e := NewAttrEncoder()
	e.Bytes(1, binary.BigEndian.AppendUint32(nil, 3))
	e.Bytes(2, []byte("test\x00"))
	e.Bytes(10, []byte{1})
	e.Bytes(11, binary.BigEndian.AppendUint64(nil, 0x0000000a11223344))
	e.Bytes(6, binary.BigEndian.AppendUint16(nil, 0xabcd))
	table := NewEncoder()
	table.Int32("rc", 0)
	tb, err := table.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e.Bytes(7, tb)
	e.Nested(11, func(e *AttrEncoder) error {
		e.Bytes(0, binary.BigEndian.AppendUint32(nil, 1))
		e.Bytes(0, nil)
		return nil
	})
	got, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, attrStream+`
		0b000010 00000008 00000001 00000004`)
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %x\nwant %x", got, want)
	}

	// Errors stick, also from inside a container.
	e = NewAttrEncoder()
	e.Nested(6, func(*AttrEncoder) error { return errType })
	e.Bytes(1, nil)
	if _, err := e.Encode(); !errors.Is(err, errType) {
		t.Errorf("err %v", err)
	}
}
