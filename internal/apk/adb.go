package apk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ADB values. apk-tools src/adb.h:
//
//	typedef uint32_t adb_val_t;
//	#define ADB_TYPE_SPECIAL	0x00000000
//	#define ADB_TYPE_INT		0x10000000
//	#define ADB_TYPE_INT_32		0x20000000
//	#define ADB_TYPE_INT_64		0x30000000
//	#define ADB_TYPE_BLOB_8		0x80000000
//	#define ADB_TYPE_BLOB_16	0x90000000
//	#define ADB_TYPE_BLOB_32	0xa0000000
//	#define ADB_TYPE_ARRAY		0xd0000000
//	#define ADB_TYPE_OBJECT		0xe0000000
//	#define ADB_VALUE_MASK		0x0fffffff
//
// A value is a little-endian 32-bit word: 4 bits of type, 28 bits of
// immediate value (INT, SPECIAL) or of offset into the ADB block (all
// others). Objects and arrays are a run of value slots whose slot 0 is the
// number of slots; a blob is a 1, 2 or 4-byte length and the bytes.
type val uint32

const (
	typeSpecial = 0x0
	typeInt     = 0x1
	typeInt32   = 0x2
	typeInt64   = 0x3
	typeBlob8   = 0x8
	typeBlob16  = 0x9
	typeBlob32  = 0xa
	typeArray   = 0xd
	typeObject  = 0xe

	valueMask = 0x0fffffff
	null      = val(0) // ADB_VAL_NULL, an absent field
)

func mkval(typ, v uint32) val { return val(typ<<28 | v) }
func (v val) typ() uint32     { return uint32(v) >> 28 }
func (v val) value() uint32   { return uint32(v) & valueMask }

// File and block framing, apk-tools src/adb.h:
//
//	#define ADB_FORMAT_MAGIC	0x2e424441	// ADB.
//	struct adb_file_header { uint32_t magic; uint32_t schema; };
//	#define ADB_BLOCK_ALIGNMENT	8
//	#define ADB_BLOCK_ADB 0 / SIG 1 / DATA 2 / EXT 3
//	struct adb_block { uint32_t type_size; uint32_t reserved; uint64_t x_size; };
//	struct adb_hdr { uint8_t adb_compat_ver; uint8_t adb_ver; uint16_t reserved; adb_val_t root; };
//
// A block starts with type_size: 2 bits of type, 30 bits of size counting
// the 4-byte header itself; an EXT block (type 3) carries its real type in
// the low bits and a 64-bit size after a reserved word (16-byte header).
// Every block is padded with zeros to a multiple of 8.
const (
	magicADB       = "ADB."
	magicDeflate   = "ADBd"     // followed by a raw deflate stream of the whole file
	magicCompSpec  = "ADBc"     // followed by {alg, level} and that stream
	schemaPackage  = 0x676b6370 // "pckg" read little-endian (ADB_SCHEMA_PACKAGE)
	fileHeaderSize = 8
	blockAlign     = 8
	blockHdrSize   = 4
	blockExtSize   = 16
	blockADB       = 0
	blockSig       = 1
	blockData      = 2
	blockExt       = 3
	maxBlockSize   = 0x3fffffff - blockHdrSize // larger needs an EXT block
	adbHdrSize     = 8                         // struct adb_hdr
	dataHdrSize    = 8                         // struct adb_data_package {uint32 path_idx, file_idx}
)

// builder is the ADB block being written: apk-tools' adb_w_* functions.
// Every blob, indirect integer and object is appended at its alignment;
// one that equals an earlier one at a usable alignment is not written again
// but referenced (adb_w_data's hash buckets), which is what makes `apk
// mkpkg` output compact and what this writer must copy to be byte-exact.
type builder struct {
	buf   []byte
	dedup map[string]uint32 // content -> offset of its latest copy
	err   error             // sticky: the block outgrew 28-bit offsets
}

func newBuilder() *builder {
	// adb_w_init_dynamic: the header (root still 0) is the first 8 bytes.
	return &builder{buf: make([]byte, adbHdrSize), dedup: map[string]uint32{}}
}

// raw appends p at the next multiple of align (adb_w_raw).
func (b *builder) raw(align int, p []byte) uint32 {
	for len(b.buf)%align != 0 {
		b.buf = append(b.buf, 0)
	}
	off := len(b.buf)
	b.buf = append(b.buf, p...)
	if off > valueMask && b.err == nil {
		b.err = fmt.Errorf("apk: ADB block over %d bytes: %w", valueMask, errTooLarge)
	}
	return uint32(off) & valueMask
}

// data appends p unless an identical copy at a multiple of align exists
// (adb_w_data). A misaligned earlier copy is replaced in the table, as the
// C code overwrites the bucket entry.
func (b *builder) data(align int, p []byte) uint32 {
	if off, ok := b.dedup[string(p)]; ok && int(off)%align == 0 {
		return off
	}
	off := b.raw(align, p)
	b.dedup[string(p)] = off
	return off
}

// blobPrefix returns the length prefix, type and alignment of an n-byte
// blob (adb_w_blob_vec).
func blobPrefix(n int) ([]byte, uint32, int) {
	switch {
	case n > 0xffff:
		return binary.LittleEndian.AppendUint32(nil, uint32(n)), typeBlob32, 4
	case n > 0xff:
		return binary.LittleEndian.AppendUint16(nil, uint16(n)), typeBlob16, 2
	default:
		return []byte{byte(n)}, typeBlob8, 1
	}
}

// blob writes p (adb_w_blob); an empty blob is null, an absent field.
func (b *builder) blob(p []byte) val {
	if len(p) == 0 {
		return null
	}
	pre, typ, align := blobPrefix(len(p))
	return mkval(typ, b.data(align, append(pre, p...)))
}

// blobUnique writes p without de-duplication (adb_w_blob_raw), so that it
// can be patched in place later.
func (b *builder) blobUnique(p []byte) (val, int) {
	pre, typ, align := blobPrefix(len(p))
	off := b.raw(align, append(pre, p...))
	return mkval(typ, off), int(off) + len(pre)
}

// int writes v (adb_w_int): immediate below 2^28, else 4 or 8 bytes.
func (b *builder) int(v uint64) val {
	switch {
	case v >= 1<<32:
		return mkval(typeInt64, b.data(4, binary.LittleEndian.AppendUint64(nil, v)))
	case v >= 1<<28:
		return mkval(typeInt32, b.data(4, binary.LittleEndian.AppendUint32(nil, uint32(v))))
	default:
		return mkval(typeInt, uint32(v))
	}
}

// object writes the slots fields[1:] (fields[0] is ignored and becomes the
// slot count) with trailing nulls dropped (__adb_w_obj); with no field set
// it writes nothing and returns null. apk-tools types every object and
// every array built through adb_wo_obj or from a string as OBJECT; only
// adb_w_arr (xattrs) gives ARRAY, and readers accept either.
func (b *builder) object(fields []val) val {
	n := len(fields)
	for n > 1 && fields[n-1] == null {
		n--
	}
	if n <= 1 {
		return null
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(n))
	for _, f := range fields[1:n] {
		out = binary.LittleEndian.AppendUint32(out, uint32(f))
	}
	return mkval(typeObject, b.data(4, out))
}

// finish sets the root value in the header and returns the block payload.
func (b *builder) finish(root val) ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	binary.LittleEndian.PutUint32(b.buf[4:], uint32(root))
	return b.buf, nil
}

// appendBlock frames payload as a block of type typ, padded to 8 bytes
// (adb_c_block; payloads over maxBlockSize would need an EXT header and are
// refused, none of ours comes near 1 GiB).
func appendBlock(dst []byte, typ uint32, payload ...[]byte) ([]byte, error) {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	if n > maxBlockSize {
		return nil, fmt.Errorf("apk: a %d-byte block: %w", n, errTooLarge)
	}
	dst = binary.LittleEndian.AppendUint32(dst, typ<<30|uint32(blockHdrSize+n))
	for _, p := range payload {
		dst = append(dst, p...)
	}
	for (blockHdrSize+n)%blockAlign != 0 {
		dst = append(dst, 0)
		n++
	}
	return dst, nil
}

// adbReader resolves values in a decoded ADB block with bounds checks
// (adb_r_*); every accessor returns an error instead of reading past the
// block.
//
// Values are offsets, so many slots may point at one object: a block of n
// words can make a naive walk visit n objects of n slots each, or n
// directories of the same n files (n² entries from a few KiB). work bounds
// the slots object returns over the whole walk to a multiple of the
// block's size (see newADBReader), so decoding stays linear in the input.
type adbReader struct {
	buf  []byte
	work *int // slots object may still return
}

// workPerWord is how many slots object may return per 4-byte word of the
// block. Packages from Build and apk mkpkg need under 1 (carpd's 0.40,
// luci-app-carpd's 0.38, testdata/mkpkg-3.0.6.apk's 0.72: each file object
// is written once, only small ACL objects are shared); 8 leaves room for a
// writer that shares whole directories and keeps the walk linear.
const workPerWord = 8

func newADBReader(adb []byte) adbReader {
	work := workPerWord*(len(adb)/4) + 64
	return adbReader{buf: adb, work: &work}
}

func (r adbReader) deref(v val, n int) ([]byte, error) {
	off := int(v.value())
	if off+n > len(r.buf) || off+n < off {
		return nil, fmt.Errorf("apk: value %#08x: %d bytes at offset %d past the %d-byte ADB block: %w",
			uint32(v), n, off, len(r.buf), errValue)
	}
	return r.buf[off : off+n], nil
}

func (r adbReader) blob(v val) ([]byte, error) {
	var n, pre int
	switch v.typ() {
	case typeSpecial:
		if v == null {
			return nil, nil
		}
	case typeBlob8:
		pre = 1
	case typeBlob16:
		pre = 2
	case typeBlob32:
		pre = 4
	}
	if pre == 0 {
		return nil, fmt.Errorf("apk: value %#08x is not a blob: %w", uint32(v), errValue)
	}
	p, err := r.deref(v, pre)
	if err != nil {
		return nil, err
	}
	switch pre {
	case 1:
		n = int(p[0])
	case 2:
		n = int(binary.LittleEndian.Uint16(p))
	case 4:
		n = int(binary.LittleEndian.Uint32(p))
	}
	p, err = r.deref(v, pre+n)
	if err != nil {
		return nil, err
	}
	return p[pre:], nil
}

func (r adbReader) int(v val) (uint64, error) {
	switch v.typ() {
	case typeSpecial:
		if v == null {
			return 0, nil
		}
	case typeInt:
		return uint64(v.value()), nil
	case typeInt32:
		p, err := r.deref(v, 4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.LittleEndian.Uint32(p)), nil
	case typeInt64:
		p, err := r.deref(v, 8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(p), nil
	}
	return 0, fmt.Errorf("apk: value %#08x is not an integer: %w", uint32(v), errValue)
}

// object returns the slots of an object or array, slot 0 included (so
// field i is slots[i]); null gives one slot, an empty object.
func (r adbReader) object(v val) ([]val, error) {
	if v == null {
		return []val{1}, nil
	}
	if v.typ() != typeObject && v.typ() != typeArray {
		return nil, fmt.Errorf("apk: value %#08x is not an object: %w", uint32(v), errValue)
	}
	p, err := r.deref(v, 4)
	if err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(p))
	if n == 0 || n > len(r.buf)/4 {
		return nil, fmt.Errorf("apk: object %#08x has %d slots: %w", uint32(v), n, errValue)
	}
	if p, err = r.deref(v, 4*n); err != nil {
		return nil, err
	}
	if *r.work -= n; *r.work < 0 {
		return nil, fmt.Errorf("apk: the %d-byte ADB block references more than %d value slots (objects shared too often): %w",
			len(r.buf), workPerWord*(len(r.buf)/4)+64, errWork)
	}
	slots := make([]val, n)
	for i := range slots {
		slots[i] = val(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return slots, nil
}

// field returns slot i of an object, null when the object is shorter.
func field(slots []val, i int) val {
	if i < len(slots) {
		return slots[i]
	}
	return null
}

// take splits off the first n bytes of b, or reports io.ErrUnexpectedEOF.
func take(b []byte, n int) ([]byte, []byte, error) {
	if n < 0 || len(b) < n {
		return nil, nil, io.ErrUnexpectedEOF
	}
	return b[:n], b[n:], nil
}
