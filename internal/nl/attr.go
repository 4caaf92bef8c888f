package nl

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Attributes (struct nlattr: __u16 nla_len, __u16 nla_type, then the
// payload padded to 4 bytes).
const (
	attrHeaderLen = 4
	// attrTypeMask takes NLA_F_NESTED and NLA_F_NET_BYTEORDER off
	// nla_type.
	attrTypeMask = 0x3fff
	// Nested is NLA_F_NESTED.
	Nested uint16 = 0x8000
)

var errBadAttr = errors.New("netlink: invalid attribute")

// AttributeEncoder appends attributes. Its zero value is ready to use.
type AttributeEncoder struct{ b []byte }

// NewAttributeEncoder returns an empty encoder.
func NewAttributeEncoder() *AttributeEncoder { return &AttributeEncoder{} }

// Bytes appends an attribute of type typ with payload v.
func (e *AttributeEncoder) Bytes(typ uint16, v []byte) {
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(attrHeaderLen+len(v)))
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, v...)
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

// Uint8 appends a one-byte attribute.
func (e *AttributeEncoder) Uint8(typ uint16, v uint8) { e.Bytes(typ, []byte{v}) }

// Uint16 appends a two-byte attribute in host byte order.
func (e *AttributeEncoder) Uint16(typ uint16, v uint16) {
	e.Bytes(typ, binary.NativeEndian.AppendUint16(nil, v))
}

// Uint32 appends a four-byte attribute in host byte order.
func (e *AttributeEncoder) Uint32(typ uint16, v uint32) {
	e.Bytes(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// String appends s with its terminating NUL.
func (e *AttributeEncoder) String(typ uint16, s string) { e.Bytes(typ, append([]byte(s), 0)) }

// Encode returns the attributes appended so far.
func (e *AttributeEncoder) Encode() ([]byte, error) { return e.b, nil }

// AttributeDecoder walks attributes:
//
//	ad := nl.NewAttributeDecoder(b)
//	for ad.Next() {
//		switch ad.Type() { ... ad.Uint32() ... }
//	}
//	err := ad.Err()
//
// It does not copy: Bytes aliases the input. A malformed attribute ends the
// walk with an error, as does a getter given a payload of the wrong size.
type AttributeDecoder struct {
	b    []byte
	typ  uint16
	data []byte
	err  error
}

// NewAttributeDecoder returns a decoder of b.
func NewAttributeDecoder(b []byte) *AttributeDecoder { return &AttributeDecoder{b: b} }

// Next moves to the next attribute; false at the end or on an error.
func (d *AttributeDecoder) Next() bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	if len(d.b) < attrHeaderLen {
		d.err = errBadAttr
		return false
	}
	l := int(binary.NativeEndian.Uint16(d.b))
	if l < attrHeaderLen || l > len(d.b) {
		d.err = errBadAttr
		return false
	}
	d.typ = binary.NativeEndian.Uint16(d.b[2:])
	d.data = d.b[attrHeaderLen:l:l]
	d.b = d.b[min(align(l), len(d.b)):]
	return true
}

// Type is the attribute's type without the NLA_F_NESTED and
// NLA_F_NET_BYTEORDER flags.
func (d *AttributeDecoder) Type() uint16 { return d.typ & attrTypeMask }

// TypeFlags is the attribute's type with its flags.
func (d *AttributeDecoder) TypeFlags() uint16 { return d.typ }

// Bytes is the payload; it aliases the decoder's input.
func (d *AttributeDecoder) Bytes() []byte { return d.data }

// String is the payload up to its first NUL.
func (d *AttributeDecoder) String() string {
	b := d.data
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return string(b)
}

func (d *AttributeDecoder) size(n int) bool {
	if len(d.data) == n {
		return true
	}
	if d.err == nil {
		d.err = errors.New("netlink: attribute " + strconv.Itoa(int(d.Type())) + " has length " +
			strconv.Itoa(len(d.data)) + ", want " + strconv.Itoa(n))
	}
	return false
}

// Uint8 is a one-byte payload.
func (d *AttributeDecoder) Uint8() uint8 {
	if !d.size(1) {
		return 0
	}
	return d.data[0]
}

// Uint16 is a two-byte payload in host byte order.
func (d *AttributeDecoder) Uint16() uint16 {
	if !d.size(2) {
		return 0
	}
	return binary.NativeEndian.Uint16(d.data)
}

// Uint32 is a four-byte payload in host byte order.
func (d *AttributeDecoder) Uint32() uint32 {
	if !d.size(4) {
		return 0
	}
	return binary.NativeEndian.Uint32(d.data)
}

// Do decodes the payload with fn; its error ends the walk.
func (d *AttributeDecoder) Do(fn func(b []byte) error) {
	if err := fn(d.data); err != nil && d.err == nil {
		d.err = err
	}
}

// Err is the first error met, nil at a clean end.
func (d *AttributeDecoder) Err() error { return d.err }
