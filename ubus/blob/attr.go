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
	d := NewAttrDecoder(b)
	for d.Next() {
		out = append(out, d.Attr())
	}
	return out, d.Err()
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

// AttrDecoder iterates over a sequence of plain blob attributes with a sticky
// error, like netlink.AttributeDecoder. Typical use:
//
//	d := blob.NewAttrDecoder(b)
//	for d.Next() {
//		switch d.ID() {
//		case 3:
//			id = d.Uint32()
//		}
//	}
//	if err := d.Err(); err != nil { … }
//
// Getters check the payload size; a mismatch sets the error and ends the
// iteration. Byte slices returned alias the input.
type AttrDecoder struct {
	b   []byte // the attributes not yet visited
	a   Attr   // the current attribute
	err error  // sticky
}

// NewAttrDecoder returns a decoder for the attributes in b.
func NewAttrDecoder(b []byte) *AttrDecoder { return &AttrDecoder{b: b} }

// Next advances to the next attribute. It returns false at the end of the
// input or after an error; check Err.
func (d *AttrDecoder) Next() bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	a, rest, err := SplitAttr(d.b)
	if err != nil {
		d.err = err
		return false
	}
	d.a, d.b = a, rest
	return true
}

// Err returns the first error met while decoding.
func (d *AttrDecoder) Err() error { return d.err }

// Attr returns the current attribute.
func (d *AttrDecoder) Attr() Attr { return d.a }

// ID returns the current attribute's id.
func (d *AttrDecoder) ID() uint8 { return d.a.ID }

// Extended reports the current attribute's extended bit.
func (d *AttrDecoder) Extended() bool { return d.a.Extended }

// Bytes returns the current payload.
func (d *AttrDecoder) Bytes() []byte { return d.a.Data }

// fail records a getter error for the current attribute.
func (d *AttrDecoder) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("blob: attribute %d: %w", d.a.ID, err)
	}
}

// fixed returns the payload if it has exactly n bytes.
func (d *AttrDecoder) fixed(n int) []byte {
	if err := checkFixed(d.a.Data, n); err != nil {
		d.fail(err)
		return nil
	}
	return d.a.Data
}

// Uint8 decodes a BLOB_ATTR_INT8 payload.
func (d *AttrDecoder) Uint8() uint8 {
	if b := d.fixed(1); b != nil {
		return b[0]
	}
	return 0
}

// Uint16 decodes a big-endian BLOB_ATTR_INT16 payload.
func (d *AttrDecoder) Uint16() uint16 {
	if b := d.fixed(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// Uint32 decodes a big-endian BLOB_ATTR_INT32 payload.
func (d *AttrDecoder) Uint32() uint32 {
	if b := d.fixed(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// Uint64 decodes a big-endian BLOB_ATTR_INT64 payload.
func (d *AttrDecoder) Uint64() uint64 {
	if b := d.fixed(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// String decodes a NUL-terminated BLOB_ATTR_STRING payload, stopping at the
// first NUL as C does.
func (d *AttrDecoder) String() string {
	s, err := cString(d.a.Data)
	if err != nil {
		d.fail(err)
	}
	return s
}

// Nested calls fn with a decoder over the current payload, treated as plain
// attributes. An error from fn or from the nested decoder becomes d's error.
func (d *AttrDecoder) Nested(fn func(*AttrDecoder) error) {
	if d.err != nil {
		return
	}
	nd := NewAttrDecoder(d.a.Data)
	if err := fn(nd); err != nil {
		d.fail(err)
	} else if err := nd.Err(); err != nil {
		d.fail(err)
	}
}

// Blobmsg calls fn with a blobmsg Decoder over the current payload (the
// content of ubus DATA and SIGNATURE attributes).
func (d *AttrDecoder) Blobmsg(fn func(*Decoder) error) {
	if d.err != nil {
		return
	}
	nd := NewDecoder(d.a.Data)
	if err := fn(nd); err != nil {
		d.fail(err)
	} else if err := nd.Err(); err != nil {
		d.fail(err)
	}
}

// AttrEncoder builds a sequence of plain blob attributes with a sticky error,
// mirroring AttrDecoder. Nested containers are written in place: the header
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

// Uint8 appends a BLOB_ATTR_INT8 payload.
func (e *AttrEncoder) Uint8(id, v uint8) { e.Bytes(id, []byte{v}) }

// Uint16 appends a big-endian BLOB_ATTR_INT16 payload.
func (e *AttrEncoder) Uint16(id uint8, v uint16) {
	e.Bytes(id, binary.BigEndian.AppendUint16(nil, v))
}

// Uint32 appends a big-endian BLOB_ATTR_INT32 payload (blob_put_int32).
func (e *AttrEncoder) Uint32(id uint8, v uint32) {
	e.Bytes(id, binary.BigEndian.AppendUint32(nil, v))
}

// Uint64 appends a big-endian BLOB_ATTR_INT64 payload.
func (e *AttrEncoder) Uint64(id uint8, v uint64) {
	e.Bytes(id, binary.BigEndian.AppendUint64(nil, v))
}

// String appends a NUL-terminated string (blob_put_string). Like C's strlen,
// it stops at an embedded NUL.
func (e *AttrEncoder) String(id uint8, s string) {
	e.Bytes(id, append([]byte(truncNUL(s)), 0))
}

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

// Blobmsg appends a plain attribute whose payload fn encodes as blobmsg
// attributes: ubus DATA and SIGNATURE.
func (e *AttrEncoder) Blobmsg(id uint8, fn func(*Encoder) error) {
	if e.err != nil {
		return
	}
	pos := len(e.b)
	ne := &Encoder{b: appendHeader(e.b, id, false, 0)}
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
