package blob

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Type is a blobmsg value type, stored in the id bits of an extended blob
// attribute. From libubox blobmsg.h:
//
//	enum blobmsg_type {
//		BLOBMSG_TYPE_UNSPEC,
//		BLOBMSG_TYPE_ARRAY,
//		BLOBMSG_TYPE_TABLE,
//		BLOBMSG_TYPE_STRING,
//		BLOBMSG_TYPE_INT64,
//		BLOBMSG_TYPE_INT32,
//		BLOBMSG_TYPE_INT16,
//		BLOBMSG_TYPE_INT8,
//		BLOBMSG_TYPE_DOUBLE,
//		__BLOBMSG_TYPE_LAST,
//		BLOBMSG_TYPE_LAST = __BLOBMSG_TYPE_LAST - 1,
//		BLOBMSG_TYPE_BOOL = BLOBMSG_TYPE_INT8,
//	};
type Type uint8

// blobmsg types (docs/ubus-protocol.md#blob-and-blobmsg).
const (
	TypeUnspec Type = iota // no value; JSON null
	TypeArray              // blobmsg attributes with empty names
	TypeTable              // named blobmsg attributes
	TypeString             // bytes + NUL
	TypeInt64              // 8 bytes big-endian
	TypeInt32              // 4 bytes big-endian
	TypeInt16              // 2 bytes big-endian
	TypeInt8               // 1 byte; also the boolean type
	TypeDouble             // IEEE-754 bits as a big-endian uint64

	// TypeBool is BLOBMSG_TYPE_BOOL, an alias of TypeInt8.
	TypeBool = TypeInt8

	typeLast = TypeDouble
)

var typeNames = [...]string{
	TypeUnspec: "UNSPEC",
	TypeArray:  "ARRAY",
	TypeTable:  "TABLE",
	TypeString: "STRING",
	TypeInt64:  "INT64",
	TypeInt32:  "INT32",
	TypeInt16:  "INT16",
	TypeInt8:   "INT8",
	TypeDouble: "DOUBLE",
}

// String returns the blobmsg_type name without its prefix, e.g. "INT32".
func (t Type) String() string {
	if t <= typeLast {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// fixedSize is the exact value size of the fixed-size types, 0 otherwise.
func (t Type) fixedSize() int {
	switch t {
	case TypeInt64, TypeDouble:
		return 8
	case TypeInt32:
		return 4
	case TypeInt16:
		return 2
	case TypeInt8:
		return 1
	}
	return 0
}

// The name header that starts the payload of an extended attribute:
//
//	#define BLOBMSG_ALIGN	2
//	#define BLOBMSG_PADDING(len) (((len) + (1 << BLOBMSG_ALIGN) - 1) & ~((1 << BLOBMSG_ALIGN) - 1))
//
//	struct blobmsg_hdr {
//		uint16_t namelen;
//		uint8_t name[];
//	} __packed;
//
//	static inline int blobmsg_hdrlen(unsigned int namelen)
//	{
//		return BLOBMSG_PADDING(sizeof(struct blobmsg_hdr) + namelen + 1);
//	}
//
// So "id" takes 00 02 'i' 'd' 00 + 3 bytes of padding = 8 bytes, and the
// empty name of an array member takes 00 00 00 00.
const (
	// nameLenSize is sizeof(struct blobmsg_hdr): the be16 namelen.
	nameLenSize = 2
	// MaxNameLen is the longest name namelen can express.
	MaxNameLen = math.MaxUint16
	// maxDepth bounds table/array nesting on decode and encode, so that a
	// crafted 16 MiB attribute cannot recurse millions of levels deep.
	maxDepth = 128
)

// nameHeaderLen is blobmsg_hdrlen.
func nameHeaderLen(namelen int) int { return Align(nameLenSize + namelen + 1) }

// appendNameHeader appends a blobmsg_hdr for name, NUL and padding included.
func appendNameHeader(b []byte, name string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = append(b, 0)
	return pad(b)
}

// splitName parses the name header of an extended attribute's payload and
// returns the name and the value after it. It mirrors blobmsg_check_name:
//
//	if (blob_len(attr) < sizeof(struct blobmsg_hdr))
//		return false;
//	namelen = blobmsg_namelen(hdr);
//	if (blob_len(attr) < (size_t)blobmsg_hdrlen(namelen))
//		return false;
//	if (hdr->name[namelen] != 0)
//		return false;
func splitName(data []byte) (name string, value []byte, err error) {
	if len(data) < nameLenSize {
		return "", nil, fmt.Errorf("name header: %w", io.ErrUnexpectedEOF)
	}
	n := int(binary.BigEndian.Uint16(data))
	hl := nameHeaderLen(n)
	if len(data) < hl {
		return "", nil, fmt.Errorf("name of %d bytes: %w", n, io.ErrUnexpectedEOF)
	}
	if data[nameLenSize+n] != 0 {
		return "", nil, fmt.Errorf("name not NUL-terminated: %w", errName)
	}
	// C reads the name as a C string (blobmsg_name), so an embedded NUL
	// ends it.
	return truncNUL(string(data[nameLenSize : nameLenSize+n])), data[hl:], nil
}

// checkValue validates a value against its type like blob_check_type does
// for the blob type each blobmsg type maps to: exact sizes for integers,
// 8 bytes for doubles, a final NUL for strings. Tables and arrays are checked
// when they are walked.
func checkValue(t Type, v []byte) error {
	switch {
	case t > typeLast:
		return fmt.Errorf("%v: %w", t, errType)
	case t == TypeString:
		_, err := cString(v)
		return err
	case t.fixedSize() != 0:
		return checkFixed(v, t.fixedSize())
	}
	return nil
}

// Decoder iterates over blobmsg attributes (the members of a table or an
// array) with a sticky error, like netlink.AttributeDecoder:
//
//	d := blob.NewDecoder(data)
//	for d.Next() {
//		switch d.Name() {
//		case "vhid":
//			vhid = d.Int()
//		case "master":
//			master = d.Bool()
//		}
//	}
//	if err := d.Err(); err != nil { … }
//
// Next validates each attribute's name header and value size. Getters are
// lenient where libubus callers are (Int accepts every integer width, Bool
// accepts any integer, Float accepts integers) and otherwise set the sticky
// error on a type mismatch; check Type first to skip values of the wrong
// type instead, as libubus' blobmsg_parse does. Attributes without the
// extended bit are accepted as unnamed values (libubox accepts them in
// arrays). Returned byte slices alias the input.
type Decoder struct {
	b     []byte // attributes not yet visited
	typ   Type   // current type
	ext   bool   // current extended bit
	name  string // current name ("" if not extended)
	value []byte // current value, after the name header
	depth int    // nesting level, for maxDepth
	err   error  // sticky
}

// NewDecoder returns a decoder for the blobmsg attributes in b, for example
// the payload of a ubus DATA attribute.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Next advances to the next attribute. It returns false at the end of the
// input or after an error; check Err.
func (d *Decoder) Next() bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	a, rest, err := SplitAttr(d.b)
	if err != nil {
		d.err = err
		return false
	}
	d.b = rest
	d.typ, d.ext, d.name, d.value = Type(a.ID), a.Extended, "", a.Data
	if a.Extended {
		if d.name, d.value, err = splitName(a.Data); err != nil {
			d.err = fmt.Errorf("blob: blobmsg %v: %w", d.typ, err)
			return false
		}
	}
	if err := checkValue(d.typ, d.value); err != nil {
		d.fail(err)
		return false
	}
	return true
}

// Err returns the first error met while decoding.
func (d *Decoder) Err() error { return d.err }

// fail records an error for the current attribute.
func (d *Decoder) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("blob: blobmsg %v %q: %w", d.typ, d.name, err)
	}
}

// Type returns the current attribute's type.
func (d *Decoder) Type() Type { return d.typ }

// Name returns the current attribute's name; array members have "".
func (d *Decoder) Name() string { return d.name }

// Extended reports whether the current attribute had the extended bit (a
// name header). libubox always sets it; a missing one is tolerated.
func (d *Decoder) Extended() bool { return d.ext }

// Bytes returns the raw value after the name header.
func (d *Decoder) Bytes() []byte { return d.value }

// String returns a STRING value, up to its first NUL.
func (d *Decoder) String() string {
	if d.err != nil {
		return ""
	}
	if d.typ != TypeString {
		d.fail(errType)
		return ""
	}
	s, _ := cString(d.value) // validated by Next
	return s
}

// Int returns an integer value of any width, sign-extended (INT8 is read as
// the unsigned byte blobmsg_get_u8 returns). Accepting every width is what
// libubus-based servers effectively do with JSON input, whose integers
// arrive as INT32 or INT64 depending on magnitude.
func (d *Decoder) Int() int64 {
	if d.err != nil {
		return 0
	}
	switch d.typ {
	case TypeInt64:
		return int64(binary.BigEndian.Uint64(d.value))
	case TypeInt32:
		return int64(int32(binary.BigEndian.Uint32(d.value)))
	case TypeInt16:
		return int64(int16(binary.BigEndian.Uint16(d.value)))
	case TypeInt8:
		return int64(d.value[0])
	}
	d.fail(errType)
	return 0
}

// Uint returns an integer value of any width, zero-extended: the view of
// blobmsg_get_u32 and friends. ubus object ids travel as INT32 but are
// unsigned; read them with Uint.
func (d *Decoder) Uint() uint64 {
	if d.err != nil {
		return 0
	}
	switch d.typ {
	case TypeInt64:
		return binary.BigEndian.Uint64(d.value)
	case TypeInt32:
		return uint64(binary.BigEndian.Uint32(d.value))
	case TypeInt16:
		return uint64(binary.BigEndian.Uint16(d.value))
	case TypeInt8:
		return uint64(d.value[0])
	}
	d.fail(errType)
	return 0
}

// Bool returns true for a non-zero integer of any width. BOOL is INT8 on the
// wire, but shell and Lua callers often pass 0/1 numbers (INT32).
func (d *Decoder) Bool() bool {
	return d.Uint() != 0
}

// Float returns a DOUBLE value, or an integer converted to float64.
func (d *Decoder) Float() float64 {
	if d.err != nil {
		return 0
	}
	if d.typ == TypeDouble {
		return math.Float64frombits(binary.BigEndian.Uint64(d.value))
	}
	if d.typ == TypeInt8 {
		return float64(d.value[0])
	}
	return float64(d.Int())
}

// Table calls fn with a decoder over the members of the current TABLE.
// Errors from fn or the nested decoder become d's error.
func (d *Decoder) Table(fn func(*Decoder) error) { d.nested(TypeTable, fn) }

// Array calls fn with a decoder over the members of the current ARRAY.
func (d *Decoder) Array(fn func(*Decoder) error) { d.nested(TypeArray, fn) }

// Nested calls fn with a decoder over the current TABLE or ARRAY.
func (d *Decoder) Nested(fn func(*Decoder) error) { d.nested(d.typ, fn) }

func (d *Decoder) nested(want Type, fn func(*Decoder) error) {
	if d.err != nil {
		return
	}
	if d.typ != want || (want != TypeTable && want != TypeArray) {
		d.fail(errType)
		return
	}
	if d.depth >= maxDepth {
		d.fail(errDepth)
		return
	}
	nd := &Decoder{b: d.value, depth: d.depth + 1}
	if err := fn(nd); err != nil {
		d.fail(err)
	} else if err := nd.Err(); err != nil {
		d.fail(err)
	}
}
