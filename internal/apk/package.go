package apk

import (
	"bytes"
	"cmp"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/carpd/carpd/internal/pkgfile"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Field indices of the "pckg" schema, apk-tools src/apk_adb.h.
const (
	// struct package: ADBI_PKG_*
	pkgInfo    = 1
	pkgPaths   = 2
	pkgScripts = 3
	pkgMax     = 6

	// package info: ADBI_PI_*
	piName        = 0x01
	piVersion     = 0x02
	piHashes      = 0x03
	piDescription = 0x04
	piArch        = 0x05
	piLicense     = 0x06
	piOrigin      = 0x07
	piMaintainer  = 0x08
	piURL         = 0x09
	piInstalled   = 0x0c
	piDepends     = 0x0f
	piProvides    = 0x10
	piMax         = 0x16

	// dependency: ADBI_DEP_*
	depName    = 1
	depVersion = 2
	depMatch   = 3
	depMax     = 4

	// directory: ADBI_DI_*
	diName  = 1
	diACL   = 2
	diFiles = 3
	diMax   = 4

	// file: ADBI_FI_*
	fiName   = 1
	fiACL    = 2
	fiSize   = 3
	fiMTime  = 4
	fiHashes = 5
	fiTarget = 6
	fiMax    = 7

	// acl: ADBI_ACL_*
	aclMode  = 1
	aclUser  = 2
	aclGroup = 3
	aclMax   = 5

	// scripts: ADBI_SCRPT_*, in this order
	scriptMax = 8

	// uniqueIDSize: mkpkg's "hashes" is the first 20 bytes (a SHA-1's
	// length) of the SHA-256 of the ADB block written with zeros there.
	uniqueIDSize = 20
)

// Info is the package info (apk-package(5) "PACKAGE INFO METADATA"). Empty
// strings are left out.
type Info struct {
	Name        string   // [a-zA-Z0-9][a-zA-Z0-9._+-]*
	Version     string   // apk grammar: 1.2.3, 0.1.0_git5~1a2b3c4-r1
	Description string   // one line
	Arch        string   // OpenWrt's arch (mips_24kc), or noarch
	License     string   // SPDX
	Origin      string   // the source package (OpenWrt: its SOURCE dir)
	Maintainer  string   //
	URL         string   //
	Depends     []string // package names, no version constraints
	Provides    []string // unversioned (virtual) provides
}

// Scripts are the package's scripts, by apk's names (apk-package(5)).
type Scripts struct {
	Trigger, PreInstall, PostInstall, PreDeinstall, PostDeinstall, PreUpgrade, PostUpgrade string
}

// list returns the scripts in schema order (index 1..7).
func (s *Scripts) list() []*string {
	return []*string{&s.Trigger, &s.PreInstall, &s.PostInstall, &s.PreDeinstall, &s.PostDeinstall, &s.PreUpgrade, &s.PostUpgrade}
}

// File is one regular file of the installed tree, owned by root:root.
type File = pkgfile.File

// Package is what a .apk holds. Every directory above a file is listed
// with mode 0755, as `apk mkpkg` lists every directory of its tree.
type Package struct {
	Info            Info
	Files           []File
	Scripts         Scripts
	SourceDateEpoch int64 // every mtime; apk mkpkg takes $SOURCE_DATE_EPOCH too
}

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._+-]*$`)
	// apk-package(5): number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}
	versionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)
	archRE    = regexp.MustCompile(`^[a-z0-9_.+-]+$`)
)

// ValidVersion reports whether v is a version apk accepts.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// FileName is the name OpenWrt's package-pack.mk gives the package,
// <name>-<version>.apk, which is also apk's default pkgname spec
// "${name}-${version}.apk". A feed keeps one directory per arch
// ("${arch}/${name}-${version}.apk", apk-mkndx(8)).
func (p *Package) FileName() string { return p.Info.Name + "-" + p.Info.Version + ".apk" }

func (p *Package) validate() error {
	in := p.Info
	switch {
	case !nameRE.MatchString(in.Name):
		return fmt.Errorf("apk: package name %q: only [a-zA-Z0-9._+-], starting alphanumeric", in.Name)
	case !versionRE.MatchString(in.Version):
		return fmt.Errorf("apk: version %q is not an apk version (1.2.3[_git5][~hash][-r1])", in.Version)
	case !archRE.MatchString(in.Arch):
		return fmt.Errorf("apk: arch %q is empty or invalid", in.Arch)
	case p.SourceDateEpoch <= 0:
		return errors.New("apk: SourceDateEpoch must be set (seconds since 1970)")
	}
	for _, s := range []string{in.Description, in.License, in.Origin, in.Maintainer, in.URL} {
		if strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("apk: info value %q has a line break", s)
		}
	}
	for _, list := range [][]string{in.Depends, in.Provides} {
		seen := map[string]bool{}
		for _, d := range list {
			if !nameRE.MatchString(d) || seen[d] {
				return fmt.Errorf("apk: dependency or provide %q is not a package name, or listed twice", d)
			}
			seen[d] = true
		}
	}
	if err := pkgfile.Check(p.Files); err != nil {
		return fmt.Errorf("apk: %w", err)
	}
	return nil
}

// dir is one directory of the tree: its path without the leading slash
// ("" for the root) and its files sorted by name.
type dir struct {
	name  string
	files []*File
}

// tree groups the files by directory, every ancestor directory included,
// in the order apk mkpkg walks them: the root, then the other directories
// sorted bytewise by path, files sorted bytewise by name.
func tree(files []File) []*dir {
	dirs := map[string]*dir{"": {}}
	parentOf := func(p string) string { // "etc/config" -> "etc" -> ""
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			return p[:i]
		}
		return ""
	}
	for i := range files {
		f := &files[i]
		parent := parentOf(strings.TrimPrefix(f.Path, "/"))
		for d := parent; dirs[d] == nil; d = parentOf(d) {
			dirs[d] = &dir{name: d}
		}
		dirs[parent].files = append(dirs[parent].files, f)
	}
	out := slices.SortedFunc(func(yield func(*dir) bool) {
		for _, d := range dirs {
			if !yield(d) {
				return
			}
		}
	}, func(a, b *dir) int { return strings.Compare(a.name, b.name) })
	for _, d := range out {
		slices.SortFunc(d.files, func(a, b *File) int { return strings.Compare(path.Base(a.Path), path.Base(b.Path)) })
	}
	return out
}

// Built is a package and the parts of it tests look at.
type Built struct {
	APK           []byte // the .apk file: "ADBd" and the deflated stream
	Stream        []byte // the uncompressed stream: header, ADB block, DATA blocks
	ADB           []byte // the ADB block's payload
	InstalledSize int64  // the info's installed-size: the sum of file sizes
}

// Build makes the .apk of p. The same Package gives the same bytes.
func (p *Package) Build() (*Built, error) {
	out, err := p.buildStream()
	if err != nil {
		return nil, err
	}
	var apk bytes.Buffer
	apk.WriteString(magicDeflate)
	zw, err := flate.NewWriter(&apk, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(out.Stream); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	out.APK = apk.Bytes()
	return out, nil
}

// buildStream is Build without the compression: Built.APK is nil. (The
// deflate writer at BestCompression sets up about 1 MB of state per call,
// which FuzzRead's round trip does not need.)
func (p *Package) buildStream() (*Built, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	in := p.Info
	b := newBuilder()
	str := func(s string) val { return b.blob([]byte(s)) }

	// Package info, in schema order as mkpkg's assign_fields writes it.
	info := make([]val, piMax)
	info[piName] = str(in.Name)
	info[piVersion] = str(in.Version)
	info[piDescription] = str(in.Description)
	info[piArch] = str(in.Arch)
	info[piLicense] = str(in.License)
	info[piOrigin] = str(in.Origin)
	info[piMaintainer] = str(in.Maintainer)
	info[piURL] = str(in.URL)
	info[piDepends] = b.dependencies(in.Depends)
	info[piProvides] = b.dependencies(in.Provides)

	// Directories and files (mkpkg_process_directory/_dirent): each file's
	// name, hash, mtime, size and acl, then the directory's name, acl and
	// file array, then the directory.
	dirs := tree(p.Files)
	var installed int64
	var paths []val
	for _, d := range dirs {
		var files []val
		for _, f := range d.files {
			sum := sha256.Sum256(f.Data)
			fi := make([]val, fiMax)
			fi[fiName] = str(path.Base(f.Path))
			fi[fiHashes] = b.blob(sum[:])
			fi[fiMTime] = b.int(uint64(p.SourceDateEpoch))
			fi[fiSize] = b.int(uint64(len(f.Data)))
			fi[fiACL] = b.acl(uint64(f.Mode.Perm()))
			files = append(files, b.object(fi))
			installed += int64(len(f.Data))
		}
		di := make([]val, diMax)
		di[diName] = str(d.name)
		di[diACL] = b.acl(0o755)
		di[diFiles] = b.object(append([]val{0}, files...))
		paths = append(paths, b.object(di))
	}
	s := p.Scripts
	hasScripts := slices.ContainsFunc(s.list(), func(s *string) bool { return *s != "" })
	if installed == 0 && (len(p.Files) > 0 || hasScripts) {
		installed = 1 // mkpkg: a package with files or scripts is never "size 0" (a meta package)
	}
	info[piInstalled] = b.int(uint64(installed))
	var idAt int
	info[piHashes], idAt = b.blobUnique(make([]byte, uniqueIDSize))

	pkg := make([]val, pkgMax)
	pkg[pkgInfo] = b.object(info)
	pkg[pkgPaths] = b.object(append([]val{0}, paths...))
	if hasScripts {
		sc := make([]val, scriptMax)
		for i, text := range s.list() {
			sc[1+i] = str(*text)
		}
		pkg[pkgScripts] = b.object(sc)
	}
	adb, err := b.finish(b.object(pkg))
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(adb)
	copy(adb[idAt:idAt+uniqueIDSize], id[:])

	// The stream: header, ADB block, one DATA block per non-empty file in
	// directory and file order (1-based indices).
	stream := binary.LittleEndian.AppendUint32([]byte(magicADB), schemaPackage)
	if stream, err = appendBlock(stream, blockADB, adb); err != nil {
		return nil, err
	}
	for di, d := range dirs {
		for fi, f := range d.files {
			if len(f.Data) == 0 {
				continue
			}
			hdr := binary.LittleEndian.AppendUint32(nil, uint32(di+1))
			hdr = binary.LittleEndian.AppendUint32(hdr, uint32(fi+1))
			if stream, err = appendBlock(stream, blockData, hdr, f.Data); err != nil {
				return nil, fmt.Errorf("apk: %s: %w", f.Path, err)
			}
		}
	}
	return &Built{Stream: stream, ADB: adb, InstalledSize: installed}, nil
}

// acl writes {mode, "root", "root"}: owner names, not ids, as apk stores them.
func (b *builder) acl(mode uint64) val {
	a := make([]val, aclMax)
	a[aclMode] = b.int(mode)
	a[aclUser] = b.blob([]byte("root"))
	a[aclGroup] = b.blob([]byte("root"))
	return b.object(a)
}

// dependencies writes a dependency array the way apk parses "a b c": each
// {name} object in the given order, then the slots sorted by name
// (schema_dependency_array's adb_wa_sort_unique).
func (b *builder) dependencies(names []string) val {
	type dep struct {
		name string
		v    val
	}
	var deps []dep
	for _, n := range names {
		o := make([]val, depMax)
		o[depName] = b.blob([]byte(n))
		deps = append(deps, dep{n, b.object(o)})
	}
	slices.SortFunc(deps, func(x, y dep) int { return cmp.Compare(x.name, y.name) })
	slots := []val{0}
	for _, d := range deps {
		slots = append(slots, d.v)
	}
	return b.object(slots)
}
