package ipk

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
)

// Tar output identical to what scripts/ipkg-build gets from GNU tar with
// --format=gnu --numeric-owner --sort=name --mtime=@EPOCH: 512-byte GNU
// headers ("ustar  \0" magic, empty user and group names, uid/gid 0), and
// the archive padded to a whole 10240-byte record (GNU tar's default
// blocking factor 20) -- which is what opkg's Installed-Size counts.

const (
	blockSize  = 512
	recordSize = 20 * blockSize
)

// tarEntry is one member: a directory (name ends in "/") or a regular file.
type tarEntry struct {
	name string
	mode int64 // permission bits only
	dir  bool
	data []byte
}

// octal writes v as a NUL-terminated, zero-padded octal number filling the
// field, like GNU tar ("0000755\0" for an 8-byte field).
func octal(field []byte, v int64) error {
	s := strconv.FormatInt(v, 8)
	if len(s) > len(field)-1 {
		return fmt.Errorf("ipk: %d does not fit a %d-byte tar field", v, len(field))
	}
	for i := range field[:len(field)-1] {
		field[i] = '0'
	}
	copy(field[len(field)-1-len(s):], s)
	field[len(field)-1] = 0
	return nil
}

// header returns the 512-byte GNU tar header of e.
func header(e tarEntry, mtime int64) ([]byte, error) {
	h := make([]byte, blockSize)
	if len(e.name) == 0 || len(e.name) > 100 {
		return nil, fmt.Errorf("ipk: tar name %q: empty or longer than 100 bytes", e.name)
	}
	copy(h[0:100], e.name)
	size, typ := int64(len(e.data)), byte('0')
	if e.dir {
		size, typ = 0, '5'
	}
	for _, f := range []struct {
		off, n int
		v      int64
	}{
		{100, 8, e.mode & 0o7777}, // mode
		{108, 8, 0},               // uid
		{116, 8, 0},               // gid
		{124, 12, size},           // size
		{136, 12, mtime},          // mtime
	} {
		if err := octal(h[f.off:f.off+f.n], f.v); err != nil {
			return nil, err
		}
	}
	h[156] = typ
	copy(h[257:265], "ustar  \x00") // GNU magic + version
	// uname, gname (--numeric-owner), devmajor, devminor stay NUL.
	// The checksum is computed with its own field as 8 spaces, then stored
	// as six octal digits, NUL, space.
	copy(h[148:156], "        ")
	var sum int64
	for _, b := range h {
		sum += int64(b)
	}
	s := strconv.FormatInt(sum, 8)
	copy(h[148:154], "000000"[len(s):]+s)
	h[154], h[155] = 0, ' '
	return h, nil
}

// writeTar returns the tar archive of entries, in the given order.
func writeTar(entries []tarEntry, mtime int64) ([]byte, error) {
	var b bytes.Buffer
	for _, e := range entries {
		h, err := header(e, mtime)
		if err != nil {
			return nil, err
		}
		b.Write(h)
		if !e.dir {
			b.Write(e.data)
			if pad := len(e.data) % blockSize; pad != 0 {
				b.Write(make([]byte, blockSize-pad))
			}
		}
	}
	b.Write(make([]byte, 2*blockSize)) // end-of-archive marker
	if pad := b.Len() % recordSize; pad != 0 {
		b.Write(make([]byte, recordSize-pad))
	}
	return b.Bytes(), nil
}

// gzipBytes compresses b like `gzip -n`: no file name, MTIME 0, OS 3
// (Unix); maximum compression (XFL 2) since flash is scarce. The output is
// a pure function of b for a given Go release (compress/flate is
// deterministic).
func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Header.OS = 3
	if _, err := io.Copy(zw, bytes.NewReader(b)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
