package apk

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
)

// maxStream bounds what Read inflates (a deflate bomb stops there).
const maxStream = 256 << 20

// Entry is one file or directory as the package lists it.
type Entry struct {
	Path        string      // absolute; "/" for the root directory
	Dir         bool        //
	Mode        fs.FileMode // permission bits
	User, Group string      //
	Size        uint64      // files
	MTime       uint64      // files
	SHA256      []byte      // files: the hash the metadata gives
	Data        []byte      // files: from the DATA block (nil when empty)
}

// Contents is a decoded package.
type Contents struct {
	Compressed    bool // "ADBd" (deflate) rather than "ADB."
	Info          Info
	UniqueID      []byte // the info's "hashes"
	InstalledSize uint64
	Entries       []Entry // in package order: each directory, then its files
	Scripts       Scripts
	Signatures    int    // SIG blocks
	ADB           []byte // the ADB block's payload
}

// File returns the file or directory at p.
func (c *Contents) File(p string) (Entry, bool) {
	for _, e := range c.Entries {
		if e.Path == p {
			return e, true
		}
	}
	return Entry{}, false
}

// Read decodes an apk v3 package and checks it: the block order (one ADB,
// then SIG, then DATA blocks), every value's bounds, the schema, that each
// DATA block names a regular file whose size and SHA-256 it matches, that
// every non-empty file has exactly one, and the unique id.
func Read(apk []byte) (*Contents, error) {
	c := &Contents{}
	if len(apk) < 4 {
		return nil, io.ErrUnexpectedEOF
	}
	stream := apk
	switch string(apk[:4]) {
	case magicADB:
	case magicDeflate:
		c.Compressed = true
		var err error
		if stream, err = inflate(apk[4:]); err != nil {
			return nil, err
		}
	case magicCompSpec:
		// {alg, level}: only deflate (1) is something this reader takes.
		if len(apk) < 6 {
			return nil, io.ErrUnexpectedEOF
		}
		if apk[4] != 1 {
			return nil, fmt.Errorf("apk: compression algorithm %d: %w", apk[4], errCompression)
		}
		c.Compressed = true
		var err error
		if stream, err = inflate(apk[6:]); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("apk: %w", errMagic)
	}
	hdr, rest, err := take(stream, fileHeaderSize)
	if err != nil {
		return nil, err
	}
	if string(hdr[:4]) != magicADB {
		return nil, fmt.Errorf("apk: %w", errMagic)
	}
	if binary.LittleEndian.Uint32(hdr[4:]) != schemaPackage {
		return nil, fmt.Errorf("apk: schema %q: %w", hdr[4:], errSchema)
	}

	var index [][]int // index[dir-1][file-1] = position in c.Entries
	seenData := map[int]bool{}
	for nblock := 0; len(rest) > 0; nblock++ {
		typ, payload, next, err := nextBlock(rest)
		if err != nil {
			return nil, err
		}
		rest = next
		switch {
		case nblock == 0 && typ != blockADB:
			return nil, fmt.Errorf("apk: first block has type %d, not ADB: %w", typ, errBlock)
		case typ == blockADB && nblock == 0:
			c.ADB = payload
			if index, err = c.decodeADB(payload); err != nil {
				return nil, err
			}
		case typ == blockSig && len(seenData) == 0:
			c.Signatures++
		case typ == blockData:
			p, data, err := take(payload, dataHdrSize)
			if err != nil {
				return nil, fmt.Errorf("apk: DATA block: %w", err)
			}
			di, fi := int(binary.LittleEndian.Uint32(p)), int(binary.LittleEndian.Uint32(p[4:]))
			if di < 1 || di > len(index) || fi < 1 || fi > len(index[di-1]) {
				return nil, fmt.Errorf("apk: DATA block for file %d of directory %d, which does not exist: %w", fi, di, errIntegrity)
			}
			at := index[di-1][fi-1]
			if seenData[at] {
				return nil, fmt.Errorf("apk: two DATA blocks for %s: %w", c.Entries[at].Path, errIntegrity)
			}
			seenData[at] = true
			e := &c.Entries[at]
			sum := sha256.Sum256(data)
			if uint64(len(data)) != e.Size || !bytes.Equal(sum[:], e.SHA256) {
				return nil, fmt.Errorf("apk: %s: %d bytes with SHA-256 %x, metadata says %d bytes, %x: %w",
					e.Path, len(data), sum, e.Size, e.SHA256, errIntegrity)
			}
			e.Data = data
		default:
			return nil, fmt.Errorf("apk: block %d has type %d out of order: %w", nblock, typ, errBlock)
		}
	}
	if c.ADB == nil {
		return nil, fmt.Errorf("apk: no ADB block: %w", errBlock)
	}
	for _, e := range c.Entries {
		if !e.Dir && e.Size > 0 && e.Data == nil {
			return nil, fmt.Errorf("apk: %s (%d bytes) has no DATA block: %w", e.Path, e.Size, errIntegrity)
		}
	}
	return c, nil
}

// inflaters keeps flate readers for reuse: a new one allocates and clears
// its 32 KiB window and tables, which cost more than decoding a small
// package (about 100 µs of FuzzRead's 120 µs per compressed input).
var inflaters sync.Pool

func inflate(b []byte) ([]byte, error) {
	src := bytes.NewReader(b)
	zr, _ := inflaters.Get().(io.ReadCloser)
	if zr == nil {
		zr = flate.NewReader(src)
	} else if err := zr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, fmt.Errorf("apk: deflate: %w", err)
	}
	defer inflaters.Put(zr)
	out, err := io.ReadAll(io.LimitReader(zr, maxStream+1))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("apk: deflate: %w", err)
	}
	if len(out) > maxStream {
		return nil, fmt.Errorf("apk: more than %d bytes inflated: %w", maxStream, errTooLarge)
	}
	return out, nil
}

// nextBlock splits the first block off b: its type, payload, and the rest
// after the padding.
func nextBlock(b []byte) (typ uint32, payload, rest []byte, err error) {
	p, _, err := take(b, blockHdrSize)
	if err != nil {
		return 0, nil, nil, err
	}
	ts := binary.LittleEndian.Uint32(p)
	typ, hdr, size := ts>>30, uint64(blockHdrSize), uint64(ts&0x3fffffff)
	if typ == blockExt {
		if p, _, err = take(b, blockExtSize); err != nil {
			return 0, nil, nil, err
		}
		typ, hdr, size = ts&0x3fffffff, blockExtSize, binary.LittleEndian.Uint64(p[8:])
		if typ > blockData {
			return 0, nil, nil, fmt.Errorf("apk: extended block of type %d: %w", typ, errBlock)
		}
	}
	if size < hdr {
		return 0, nil, nil, fmt.Errorf("apk: block size %d under its %d-byte header: %w", size, hdr, errBlock)
	}
	padded := (size + blockAlign - 1) &^ (blockAlign - 1)
	if padded > uint64(len(b)) {
		return 0, nil, nil, io.ErrUnexpectedEOF
	}
	return typ, b[hdr:size], b[padded:], nil
}

// decodeADB fills c from the ADB block and returns, for each directory,
// the positions in c.Entries of its files.
func (c *Contents) decodeADB(adb []byte) ([][]int, error) {
	if len(adb) < adbHdrSize {
		return nil, io.ErrUnexpectedEOF
	}
	if adb[0] != 0 {
		return nil, fmt.Errorf("apk: ADB compat version %d: %w", adb[0], errBlock)
	}
	r := newADBReader(adb)
	pkg, err := r.object(val(binary.LittleEndian.Uint32(adb[4:])))
	if err != nil {
		return nil, err
	}
	if err := c.decodeInfo(r, field(pkg, pkgInfo)); err != nil {
		return nil, err
	}
	scripts, err := r.object(field(pkg, pkgScripts))
	if err != nil {
		return nil, err
	}
	for i, s := range c.Scripts.list() {
		b, err := r.blob(field(scripts, 1+i))
		if err != nil {
			return nil, err
		}
		*s = string(b)
	}
	dirs, err := r.object(field(pkg, pkgPaths))
	if err != nil {
		return nil, err
	}
	var index [][]int
	for _, dv := range dirs[1:] {
		d, err := r.object(dv)
		if err != nil {
			return nil, err
		}
		name, err := r.blob(field(d, diName))
		if err != nil {
			return nil, err
		}
		dirPath := path.Join("/", string(name))
		e := Entry{Path: dirPath, Dir: true}
		if err := decodeACL(r, field(d, diACL), &e); err != nil {
			return nil, err
		}
		c.Entries = append(c.Entries, e)
		files, err := r.object(field(d, diFiles))
		if err != nil {
			return nil, err
		}
		var at []int
		for _, fv := range files[1:] {
			f, err := r.object(fv)
			if err != nil {
				return nil, err
			}
			e, err := decodeFile(r, f, dirPath)
			if err != nil {
				return nil, err
			}
			at = append(at, len(c.Entries))
			c.Entries = append(c.Entries, e)
		}
		index = append(index, at)
	}
	return index, nil
}

func (c *Contents) decodeInfo(r adbReader, v val) error {
	info, err := r.object(v)
	if err != nil {
		return err
	}
	strs := []struct {
		i   int
		dst *string
	}{
		{piName, &c.Info.Name}, {piVersion, &c.Info.Version}, {piDescription, &c.Info.Description},
		{piArch, &c.Info.Arch}, {piLicense, &c.Info.License}, {piOrigin, &c.Info.Origin},
		{piMaintainer, &c.Info.Maintainer}, {piURL, &c.Info.URL},
	}
	for _, s := range strs {
		b, err := r.blob(field(info, s.i))
		if err != nil {
			return err
		}
		*s.dst = string(b)
	}
	if c.UniqueID, err = r.blob(field(info, piHashes)); err != nil {
		return err
	}
	if c.InstalledSize, err = r.int(field(info, piInstalled)); err != nil {
		return err
	}
	if c.Info.Depends, err = decodeDeps(r, field(info, piDepends)); err != nil {
		return err
	}
	if c.Info.Provides, err = decodeDeps(r, field(info, piProvides)); err != nil {
		return err
	}
	// The unique id is the SHA-256 prefix of the block with zeros in its place.
	if hv := field(info, piHashes); len(c.UniqueID) == uniqueIDSize && hv.typ() == typeBlob8 {
		zeroed := bytes.Clone(c.ADB)
		at := int(hv.value()) + 1
		clear(zeroed[at : at+uniqueIDSize])
		if sum := sha256.Sum256(zeroed); !bytes.Equal(sum[:uniqueIDSize], c.UniqueID) {
			return fmt.Errorf("apk: unique id %x is not the block's SHA-256 prefix %x: %w", c.UniqueID, sum[:uniqueIDSize], errIntegrity)
		}
	}
	return nil
}

// decodeDeps returns a dependency array as strings: name, or name with
// its operator and version.
func decodeDeps(r adbReader, v val) ([]string, error) {
	arr, err := r.object(v)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, dv := range arr[1:] {
		d, err := r.object(dv)
		if err != nil {
			return nil, err
		}
		name, err := r.blob(field(d, depName))
		if err != nil {
			return nil, err
		}
		ver, err := r.blob(field(d, depVersion))
		if err != nil {
			return nil, err
		}
		match, err := r.int(field(d, depMatch))
		if err != nil {
			return nil, err
		}
		s := string(name)
		if ver != nil {
			s += fmt.Sprintf("[op %d]%s", match, ver)
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeACL(r adbReader, v val, e *Entry) error {
	acl, err := r.object(v)
	if err != nil {
		return err
	}
	mode, err := r.int(field(acl, aclMode))
	if err != nil {
		return err
	}
	if mode > 0o7777 {
		return fmt.Errorf("apk: %s: mode %o: %w", e.Path, mode, errValue)
	}
	e.Mode = fs.FileMode(mode)
	user, err := r.blob(field(acl, aclUser))
	if err != nil {
		return err
	}
	group, err := r.blob(field(acl, aclGroup))
	if err != nil {
		return err
	}
	e.User, e.Group = string(user), string(group)
	return nil
}

func decodeFile(r adbReader, f []val, dir string) (Entry, error) {
	name, err := r.blob(field(f, fiName))
	if err != nil {
		return Entry{}, err
	}
	if len(name) == 0 || bytes.ContainsAny(name, "/\x00") || string(name) == "." || string(name) == ".." {
		return Entry{}, fmt.Errorf("apk: file name %q in %s: %w", name, dir, errValue)
	}
	e := Entry{Path: path.Join(dir, string(name))}
	if err := decodeACL(r, field(f, fiACL), &e); err != nil {
		return Entry{}, err
	}
	if field(f, fiTarget) != null {
		return Entry{}, fmt.Errorf("apk: %s is a link or device; this reader takes regular files only: %w", e.Path, errValue)
	}
	if e.Size, err = r.int(field(f, fiSize)); err != nil {
		return Entry{}, err
	}
	if e.MTime, err = r.int(field(f, fiMTime)); err != nil {
		return Entry{}, err
	}
	if e.SHA256, err = r.blob(field(f, fiHashes)); err != nil {
		return Entry{}, err
	}
	if len(e.SHA256) != sha256.Size {
		return Entry{}, fmt.Errorf("apk: %s: a %d-byte hash, not SHA-256: %w", e.Path, len(e.SHA256), errValue)
	}
	return e, nil
}
