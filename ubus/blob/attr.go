package blob

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// The blob attribute header, from libubox blob.h:
//
//	#define BLOB_ATTR_ID_MASK  0x7f000000
//	#define BLOB_ATTR_ID_SHIFT 24
//	#define BLOB_ATTR_LEN_MASK 0x00ffffff
//	#define BLOB_ATTR_ALIGN    4
//	#define BLOB_ATTR_EXTENDED 0x80000000
//
//	struct blob_attr {
//		uint32_t id_len;
//		char data[];
//	} __packed;
//
// Layout of one attribute (docs/ubus-protocol.md#blob-and-blobmsg):
//
//	0                   1                   2                   3
//	0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-------------+-----------------------------------------------+
//	|E|     id      |   length (header + payload, without padding)  |
//	+-+-------------+-----------------------------------------------+
//	|  payload ...                          | zero padding to 4     |
//	+---------------------------------------+-----------------------+
const (
	// HeaderLen is sizeof(struct blob_attr).
	HeaderLen = 4
	// Alignment is BLOB_ATTR_ALIGN: every attribute starts on a multiple
	// of it, and the gap is zero padding not counted in the length.
	Alignment = 4
	// MaxID is the largest id that fits BLOB_ATTR_ID_MASK.
	MaxID = idMask >> idShift
	// MaxLen is the largest raw attribute length (header included),
	// BLOB_ATTR_LEN_MASK.
	MaxLen = lenMask

	idMask      = 0x7f000000
	idShift     = 24
	lenMask     = 0x00ffffff
	extendedBit = 0x80000000
)

// Align rounds n up to the next multiple of Alignment, like libubox's
// BLOB_ATTR_ALIGN arithmetic in blob_pad_len.
func Align(n int) int { return (n + Alignment - 1) &^ (Alignment - 1) }

// Attr is one blob attribute: a plain ubus attribute (Extended false, ID one
// of the UBUS_ATTR_* values) or, with Extended set, a raw blobmsg attribute
// whose Data still starts with the name header (see Decoder for the parsed
// view).
type Attr struct {
	// ID is the 7-bit attribute id (the blobmsg type for extended ones).
	ID uint8
	// Extended is the BLOB_ATTR_EXTENDED bit.
	Extended bool
	// Data is the payload without header and without padding.
	Data []byte
}

var (
	_ encoding.BinaryMarshaler   = Attr{}
	_ encoding.BinaryAppender    = Attr{}
	_ encoding.BinaryUnmarshaler = &Attr{}
)

// Len is the raw length stored in the header: HeaderLen + len(a.Data).
func (a Attr) Len() int { return HeaderLen + len(a.Data) }

// MarshalBinary encodes the attribute with its header and zero padding to the
// next 4-byte boundary.
func (a Attr) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, Align(a.Len())))
}

// AppendBinary appends the encoded attribute (header, payload, padding) to b.
func (a Attr) AppendBinary(b []byte) ([]byte, error) {
	if a.ID > MaxID {
		return b, fmt.Errorf("blob: id %d: %w", a.ID, errAttrLen)
	}
	if a.Len() > MaxLen {
		return b, fmt.Errorf("blob: attribute %d of %d bytes: %w", a.ID, a.Len(), errAttrLen)
	}
	b = appendHeader(b, a.ID, a.Extended, a.Len())
	b = append(b, a.Data...)
	return pad(b), nil
}

// UnmarshalBinary decodes exactly one attribute; b may or may not include the
// trailing padding. Data is a copy, so b may be reused.
func (a *Attr) UnmarshalBinary(b []byte) error {
	attr, rest, err := splitAttr(b, true)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("blob: %d bytes: %w", len(rest), errTrailing)
	}
	attr.Data = append([]byte(nil), attr.Data...)
	*a = attr
	return nil
}

// SplitAttr decodes the attribute at the start of b and returns it with the
// bytes that follow its padding. The padded attribute must fit in b. The
// returned Data aliases b.
func SplitAttr(b []byte) (a Attr, rest []byte, err error) {
	return splitAttr(b, false)
}

// splitAttr is SplitAttr; lastMayBeShort accepts a final attribute whose
// padding is missing (a lone attribute from UnmarshalBinary).
func splitAttr(b []byte, lastMayBeShort bool) (Attr, []byte, error) {
	if len(b) < HeaderLen {
		return Attr{}, nil, fmt.Errorf("blob: attribute header: %w", io.ErrUnexpectedEOF)
	}
	idLen := binary.BigEndian.Uint32(b)
	raw := int(idLen & lenMask)
	a := Attr{
		ID:       uint8((idLen & idMask) >> idShift),
		Extended: idLen&extendedBit != 0,
	}
	if raw < HeaderLen {
		return Attr{}, nil, fmt.Errorf("blob: attribute %d length %d: %w", a.ID, raw, errAttrLen)
	}
	padded := Align(raw)
	switch {
	case padded <= len(b):
	case lastMayBeShort && raw <= len(b):
		padded = len(b)
	default:
		return Attr{}, nil, fmt.Errorf("blob: attribute %d needs %d bytes, have %d: %w",
			a.ID, padded, len(b), io.ErrUnexpectedEOF)
	}
	a.Data = b[HeaderLen:raw:raw]
	return a, b[padded:], nil
}

// ParseAttrs decodes a sequence of attributes, such as a nested attribute's
// payload. The returned Data fields alias b.
func ParseAttrs(b []byte) ([]Attr, error) {
	var out []Attr
	for len(b) > 0 {
		a, rest, err := SplitAttr(b)
		if err != nil {
			return out, err
		}
		out = append(out, a)
		b = rest
	}
	return out, nil
}

// appendHeader appends a blob_attr header.
func appendHeader(b []byte, id uint8, ext bool, raw int) []byte {
	v := uint32(id)<<idShift&idMask | uint32(raw)&lenMask
	if ext {
		v |= extendedBit
	}
	return binary.BigEndian.AppendUint32(b, v)
}

// pad appends zero bytes up to the next 4-byte boundary. Attribute encoders
// only ever run on buffers whose attributes start aligned, so len(b) is the
// offset that must be aligned.
func pad(b []byte) []byte {
	for len(b)%Alignment != 0 {
		b = append(b, 0)
	}
	return b
}

// checkFixed reports whether a fixed-size payload has exactly n bytes, as
// blob_check_type requires for BLOB_ATTR_INT8..INT64:
//
//	if (type >= BLOB_ATTR_INT8 && type <= BLOB_ATTR_INT64) {
//		if (len != blob_type_minlen[type])
//			return false;
func checkFixed(data []byte, n int) error {
	if len(data) != n {
		return fmt.Errorf("%d bytes, want %d: %w", len(data), n, errValueLen)
	}
	return nil
}

// cString returns a NUL-terminated payload up to its first NUL, as C reads
// it. blob_check_type demands the final NUL:
//
//	if (type == BLOB_ATTR_STRING && data[len - 1] != 0)
//		return false;
func cString(data []byte) (string, error) {
	if len(data) == 0 || data[len(data)-1] != 0 {
		return "", fmt.Errorf("string not NUL-terminated: %w", errValueLen)
	}
	return string(data[:bytes.IndexByte(data, 0)]), nil
}

// AttrEncoder builds a sequence of plain blob attributes with a sticky error.
// Nested containers are written in place: the header
// is reserved first and its length patched when the container closes, as
// blob_nest_start/blob_nest_end do.
type AttrEncoder struct {
	b   []byte // the encoded attributes
	err error  // sticky
}

// NewAttrEncoder returns an empty encoder.
func NewAttrEncoder() *AttrEncoder { return &AttrEncoder{} }

// Encode returns the encoded attributes or the first error.
func (e *AttrEncoder) Encode() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// Attr appends a prepared attribute.
func (e *AttrEncoder) Attr(a Attr) {
	if e.err != nil {
		return
	}
	e.b, e.err = a.AppendBinary(e.b)
}

// Bytes appends an attribute with the given payload.
func (e *AttrEncoder) Bytes(id uint8, data []byte) { e.Attr(Attr{ID: id, Data: data}) }

// Nested appends a container attribute whose payload fn encodes as plain
// attributes.
func (e *AttrEncoder) Nested(id uint8, fn func(*AttrEncoder) error) {
	if e.err != nil {
		return
	}
	pos := len(e.b)
	ne := &AttrEncoder{b: appendHeader(e.b, id, false, 0)}
	if err := fn(ne); err != nil && ne.err == nil {
		ne.err = err
	}
	e.b, e.err = ne.b, ne.err
	e.close(pos, id, false)
}

// close patches the header of the container that starts at pos.
func (e *AttrEncoder) close(pos int, id uint8, ext bool) {
	if e.err != nil {
		return
	}
	e.err = patchHeader(e.b, pos, id, ext)
}

// patchHeader rewrites the header at b[pos:] with the length of everything
// after pos. Containers hold only padded children, so no padding follows.
func patchHeader(b []byte, pos int, id uint8, ext bool) error {
	raw := len(b) - pos
	if raw > MaxLen || raw > math.MaxInt32 {
		return fmt.Errorf("blob: container %d of %d bytes: %w", id, raw, errAttrLen)
	}
	appendHeader(b[:pos], id, ext, raw)
	return nil
}

// truncNUL cuts s at its first NUL, mirroring the strlen() in
// blob_put_string and blobmsg_add_string.
func truncNUL(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
