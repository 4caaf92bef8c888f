package blob

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encoder builds blobmsg attributes (the members of a table or an array) with
// a sticky error, mirroring Decoder. It produces the bytes libubox's
// blobmsg_add_* functions produce: the extended bit set, the name header
// padded per blobmsg_hdrlen, every attribute padded to 4 bytes. Tables and
// arrays are written in place and their lengths patched on close, as
// blobmsg_open_table/blobmsg_close_table do.
//
// Inside an array every name is written empty (namelen 0), whatever the
// caller passes; blobmsg_format_json ignores array member names too. Like C's
// strlen, names and strings stop at an embedded NUL.
type Encoder struct {
	b     []byte // encoded attributes
	array bool   // encoding array members: names are dropped
	depth int    // nesting level, for maxDepth
	err   error  // sticky
}

// NewEncoder returns an encoder for table members.
func NewEncoder() *Encoder { return &Encoder{} }

// Encode returns the encoded attributes (for example the payload of a ubus
// DATA attribute) or the first error. An encoder without members returns an
// empty slice: the empty table.
func (e *Encoder) Encode() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// Err returns the first error met while encoding.
func (e *Encoder) Err() error { return e.err }

// start appends the attribute header and the name header of a new
// attribute, returning its offset.
func (e *Encoder) start(t Type, name string) (int, bool) {
	if e.err != nil {
		return 0, false
	}
	if t > typeLast {
		e.err = fmt.Errorf("blob: encode %v: %w", t, errType)
		return 0, false
	}
	if e.array {
		name = ""
	}
	name = truncNUL(name)
	if len(name) > MaxNameLen {
		e.err = fmt.Errorf("blob: name of %d bytes: %w", len(name), errName)
		return 0, false
	}
	pos := len(e.b)
	e.b = appendHeader(e.b, uint8(t), true, 0)
	e.b = appendNameHeader(e.b, name)
	return pos, true
}

// finish patches the header of the attribute at pos and pads it.
func (e *Encoder) finish(pos int, t Type) {
	if e.err != nil {
		return
	}
	if err := patchHeader(e.b, pos, uint8(t), true); err != nil {
		e.b = e.b[:pos]
		e.err = err
		return
	}
	e.b = pad(e.b)
}

// Raw appends an attribute with a prepared value. The value must be valid
// for t (exact integer sizes, a NUL-terminated string); TABLE and ARRAY
// values must be encoded blobmsg attributes.
func (e *Encoder) Raw(t Type, name string, value []byte) {
	if e.err == nil {
		if err := checkValue(t, value); err != nil {
			e.err = fmt.Errorf("blob: encode %v %q: %w", t, name, err)
			return
		}
	}
	pos, ok := e.start(t, name)
	if !ok {
		return
	}
	e.b = append(e.b, value...)
	e.finish(pos, t)
}

// value appends a fixed-size value, avoiding checkValue.
func (e *Encoder) value(t Type, name string, v []byte) {
	pos, ok := e.start(t, name)
	if !ok {
		return
	}
	e.b = append(e.b, v...)
	e.finish(pos, t)
}

// Unspec appends an UNSPEC attribute: JSON null.
func (e *Encoder) Unspec(name string) { e.value(TypeUnspec, name, nil) }

// String appends a STRING (blobmsg_add_string).
func (e *Encoder) String(name, s string) {
	pos, ok := e.start(TypeString, name)
	if !ok {
		return
	}
	e.b = append(e.b, truncNUL(s)...)
	e.b = append(e.b, 0)
	e.finish(pos, TypeString)
}

// Int64 appends an INT64 (blobmsg_add_u64).
func (e *Encoder) Int64(name string, v int64) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(v))
	e.value(TypeInt64, name, buf[:])
}

// Int32 appends an INT32 (blobmsg_add_u32). Pass int32(id) for the unsigned
// ubus object ids, as libubus does.
func (e *Encoder) Int32(name string, v int32) {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], uint32(v))
	e.value(TypeInt32, name, buf[:])
}

// Int16 appends an INT16 (blobmsg_add_u16).
func (e *Encoder) Int16(name string, v int16) {
	var buf [2]byte
	binary.BigEndian.PutUint16(buf[:], uint16(v))
	e.value(TypeInt16, name, buf[:])
}

// Int8 appends an INT8 (blobmsg_add_u8).
func (e *Encoder) Int8(name string, v int8) { e.value(TypeInt8, name, []byte{byte(v)}) }

// Bool appends a BOOL: an INT8 of 0 or 1.
func (e *Encoder) Bool(name string, v bool) {
	var b byte
	if v {
		b = 1
	}
	e.value(TypeBool, name, []byte{b})
}

// Float appends a DOUBLE (blobmsg_add_double).
func (e *Encoder) Float(name string, v float64) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], math.Float64bits(v))
	e.value(TypeDouble, name, buf[:])
}

// Table appends a TABLE whose members fn encodes.
func (e *Encoder) Table(name string, fn func(*Encoder) error) {
	e.container(TypeTable, name, fn)
}

// Array appends an ARRAY whose members fn encodes (their names are dropped).
func (e *Encoder) Array(name string, fn func(*Encoder) error) {
	e.container(TypeArray, name, fn)
}

func (e *Encoder) container(t Type, name string, fn func(*Encoder) error) {
	if e.err == nil && e.depth >= maxDepth {
		e.err = fmt.Errorf("blob: encode %v %q: %w", t, name, errDepth)
	}
	pos, ok := e.start(t, name)
	if !ok {
		return
	}
	ne := &Encoder{b: e.b, array: t == TypeArray, depth: e.depth + 1}
	if err := fn(ne); err != nil && ne.err == nil {
		ne.err = err
	}
	e.b, e.err = ne.b, ne.err
	e.finish(pos, t)
}
