// Package ipk writes and reads OpenWrt .ipk packages without the OpenWrt SDK.
//
// The writer produces what the SDK's include/package-pack.mk and
// scripts/ipkg-build produce for the same files
// (docs/packaging.md#package-formats):
//
//   - the outer container is a gzip-compressed tar (not an ar archive, which
//     opkg-lede cannot read) holding ./debian-binary ("2.0\n"),
//     ./data.tar.gz and ./control.tar.gz, in that order;
//   - every tar is GNU format with numeric owner 0:0, names sorted the way
//     GNU tar --sort=name walks a tree, every mtime equal to
//     SourceDateEpoch, an entry for "./" and for every parent directory
//     (mode 0755), and padding to a 10240-byte record;
//   - every gzip stream has no file name, MTIME 0 and OS 3, like gzip -n;
//   - control has the SDK's fields in the SDK's order, Installed-Size in
//     bytes (the length of the uncompressed data tar, as ipkg-build
//     measures it), and "Description:" lines as package-pack.mk's sed makes
//     them;
//   - conffiles lists, sorted, the regular files named by Conffiles (or
//     lying under a directory named there); names that match no file go to
//     /lib/upgrade/keep.d/<package> so sysupgrade still keeps them;
//   - postinst and prerm are package-pack.mk's stubs that source
//     /lib/functions.sh and call default_postinst / default_prerm, which
//     enable and start (stop and disable) the package's init scripts; a
//     package's own postinst goes to postinst-pkg, which default_postinst
//     sources (LuCI apps clear LuCI's caches there).
//
// The same Package and SourceDateEpoch give the same bytes: nothing depends
// on the clock, the file system or map order. Only a change of Go release
// could change the compressed bytes (compress/flate's output is not
// promised across releases); the uncompressed tars are fixed.
//
// Read is an independent reader (archive/tar, not this package's writer)
// for tests and tools: it lists the entries of the three archives and
// parses control.
package ipk

import (
	"errors"
	"fmt"
	"github.com/carpd/carpd/internal/pkgfile"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Control holds the fields of the control file. Empty optional fields are
// left out, as the SDK's addfield does.
type Control struct {
	Package         string   // required; [a-zA-Z0-9_.+-]
	Version         string   // required, e.g. 1.2.0-r1
	Depends         []string // e.g. libc; written as "a, b"
	Conflicts       []string
	Provides        []string
	Source          string // the package's directory in the build tree, e.g. feeds/packages/net/carpd
	SourceName      string // PKG_NAME
	License         string // SPDX, e.g. BSD-2-Clause
	LicenseFiles    string // e.g. LICENSE
	Section         string // e.g. net
	SourceDateEpoch int64  // required; also every mtime in the package
	URL             string
	Maintainer      string
	Architecture    string // required; an OpenWrt arch such as mips_24kc, or all
	// Description: one or more lines; leading blanks of each line are
	// replaced by one space, as package-pack.mk does.
	Description string
}

// File is one regular file of the installed tree.
type File = pkgfile.File

// Package is everything an .ipk holds.
type Package struct {
	Control Control
	Files   []File
	// Conffiles: paths (files or directories) that upgrades must not
	// clobber and sysupgrade keeps, as in Package/<name>/conffiles.
	Conffiles []string
	// PostinstPkg is the package's own Package/<name>/postinst, stored
	// as ./postinst-pkg (0755) next to the generated postinst stub;
	// default_postinst sources it after its own work. Empty: none.
	PostinstPkg string
}

// Postinst and Prerm are the maintainer scripts package-pack.mk generates
// for every package (without a Package/<name>/postinst of its own).
const (
	Postinst = "#!/bin/sh\n" +
		"[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0\n" +
		"[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n" +
		". ${IPKG_INSTROOT}/lib/functions.sh\n" +
		"default_postinst $0 $@\n"
	Prerm = "#!/bin/sh\n" +
		"[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n" +
		". ${IPKG_INSTROOT}/lib/functions.sh\n" +
		"default_prerm $0 $@\n"
)

// DebianBinary is the content of ./debian-binary.
const DebianBinary = "2.0\n"

var (
	pkgNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.+-]+$`)
	// A version opkg splits as [epoch:]upstream[-revision]; no blanks, no
	// '/' or '_' problems in file names. Stricter checks (apk syntax) are
	// the caller's business.
	versionRE = regexp.MustCompile(`^[A-Za-z0-9.+~_:-]+$`)
	archRE    = regexp.MustCompile(`^[a-z0-9_.+-]+$`)
)

// FileName is the SDK's name for the package: <Package>_<Version>_<Architecture>.ipk.
func (p *Package) FileName() string {
	c := p.Control
	return c.Package + "_" + c.Version + "_" + c.Architecture + ".ipk"
}

func (p *Package) validate() error {
	c := p.Control
	switch {
	case !pkgNameRE.MatchString(c.Package):
		return fmt.Errorf("ipk: package name %q: only [a-zA-Z0-9_.+-] allowed", c.Package)
	case !versionRE.MatchString(c.Version):
		return fmt.Errorf("ipk: version %q is empty or has characters opkg does not take", c.Version)
	case !archRE.MatchString(c.Architecture):
		return fmt.Errorf("ipk: architecture %q is empty or invalid", c.Architecture)
	case c.SourceDateEpoch <= 0:
		return errors.New("ipk: SourceDateEpoch must be set (seconds since 1970)")
	case strings.TrimSpace(c.Description) == "":
		return errors.New("ipk: Description is required")
	}
	for _, s := range append(append([]string{c.Source, c.SourceName, c.License, c.LicenseFiles, c.Section, c.URL, c.Maintainer},
		c.Depends...), append(c.Conflicts, c.Provides...)...) {
		if strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("ipk: control field value %q has a line break", s)
		}
	}
	if err := pkgfile.Check(p.Files); err != nil {
		return fmt.Errorf("ipk: %w", err)
	}
	for _, c := range p.Conffiles {
		if !path.IsAbs(c) {
			return fmt.Errorf("ipk: conffile %q must be absolute", c)
		}
	}
	return nil
}

// ControlText returns the control file for an uncompressed data tar of
// installedSize bytes.
func (c *Control) ControlText(installedSize int64) string {
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			b.WriteString(name + ": " + value + "\n")
		}
	}
	field("Package", c.Package)
	field("Version", c.Version)
	field("Depends", strings.Join(c.Depends, ", "))
	field("Conflicts", strings.Join(c.Conflicts, ", "))
	field("Provides", strings.Join(c.Provides, ", "))
	field("Source", c.Source)
	field("SourceName", c.SourceName)
	field("License", c.License)
	field("LicenseFiles", c.LicenseFiles)
	field("Section", c.Section)
	field("SourceDateEpoch", strconv.FormatInt(c.SourceDateEpoch, 10))
	field("URL", c.URL)
	field("Maintainer", c.Maintainer)
	field("Architecture", c.Architecture)
	field("Installed-Size", strconv.FormatInt(installedSize, 10))
	// printf "Description: "; echo "$DESCRIPTION" | sed -e 's,^[[:space:]]*, ,g'
	// so the first line reads "Description:  text" (two spaces).
	b.WriteString("Description: ")
	for _, l := range strings.Split(strings.TrimRight(c.Description, "\n"), "\n") {
		b.WriteString(" " + strings.TrimLeft(l, " \t\v\f\r") + "\n")
	}
	return b.String()
}

// resolveConffiles splits the conffiles list the way package-pack.mk and
// ipkg-build do: the sorted regular files named by an entry or lying below
// it go to CONTROL/conffiles; entries that are not a regular file of the
// package go to /lib/upgrade/keep.d/<pkg> (in the given order).
func resolveConffiles(files []File, conffiles []string) (control, keep []string) {
	isFile := map[string]bool{}
	for _, f := range files {
		isFile[f.Path] = true
	}
	set := map[string]bool{}
	for _, c := range conffiles {
		clean := path.Clean(c)
		if !isFile[clean] {
			keep = append(keep, c)
		}
		for _, f := range files {
			if f.Path == clean || strings.HasPrefix(f.Path, strings.TrimSuffix(clean, "/")+"/") {
				set[f.Path] = true
			}
		}
	}
	for p := range set {
		control = append(control, p)
	}
	slices.Sort(control)
	return control, keep
}

// treeEntries returns the tar entries of files the way GNU tar --sort=name
// walks "." : "./" first, then depth first, each directory's children
// sorted by name (bytewise), every parent directory with mode 0755.
func treeEntries(files []File) []tarEntry {
	type node struct {
		children map[string]*node
		file     *File
	}
	root := &node{children: map[string]*node{}}
	for i := range files {
		n := root
		parts := strings.Split(strings.TrimPrefix(files[i].Path, "/"), "/")
		for _, part := range parts {
			c := n.children[part]
			if c == nil {
				c = &node{children: map[string]*node{}}
				n.children[part] = c
			}
			n = c
		}
		n.file = &files[i]
	}
	var out []tarEntry
	var walk func(n *node, name string)
	walk = func(n *node, name string) {
		if n.file != nil {
			out = append(out, tarEntry{name: name, mode: int64(n.file.Mode.Perm()), data: n.file.Data})
			return
		}
		out = append(out, tarEntry{name: name + "/", mode: 0o755, dir: true})
		for _, k := range slices.Sorted(maps.Keys(n.children)) {
			walk(n.children[k], name+"/"+k)
		}
	}
	walk(root, ".")
	return out
}

// Built is a package's archives, uncompressed where that is useful to check.
type Built struct {
	IPK           []byte // the .ipk file
	DataTar       []byte // uncompressed data.tar
	ControlTar    []byte // uncompressed control.tar
	InstalledSize int64  // len(DataTar), the control's Installed-Size
}

// Build makes the .ipk of p.
func (p *Package) Build() (*Built, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	c := p.Control
	mtime := c.SourceDateEpoch
	conf, keep := resolveConffiles(p.Files, p.Conffiles)
	files := slices.Clone(p.Files)
	if len(keep) > 0 {
		kp := "/lib/upgrade/keep.d/" + c.Package
		if slices.ContainsFunc(files, func(f File) bool { return f.Path == kp }) {
			return nil, fmt.Errorf("ipk: %s is generated from Conffiles; do not ship it", kp)
		}
		files = append(files, File{Path: kp, Mode: 0o644, Data: []byte(strings.Join(keep, "\n") + "\n")})
	}
	dataTar, err := writeTar(treeEntries(files), mtime)
	if err != nil {
		return nil, err
	}
	ctl := []tarEntry{{name: "./", mode: 0o755, dir: true}}
	if len(conf) > 0 {
		ctl = append(ctl, tarEntry{name: "./conffiles", mode: 0o644, data: []byte(strings.Join(conf, "\n") + "\n")})
	}
	ctl = append(ctl,
		tarEntry{name: "./control", mode: 0o644, data: []byte(c.ControlText(int64(len(dataTar))))},
		tarEntry{name: "./postinst", mode: 0o755, data: []byte(Postinst)},
	)
	if p.PostinstPkg != "" {
		// package-pack.mk: echo "$V_Package_<name>_postinst" > postinst-pkg
		ctl = append(ctl, tarEntry{name: "./postinst-pkg", mode: 0o755, data: []byte(strings.TrimRight(p.PostinstPkg, "\n") + "\n")})
	}
	ctl = append(ctl, tarEntry{name: "./prerm", mode: 0o755, data: []byte(Prerm)})
	controlTar, err := writeTar(ctl, mtime)
	if err != nil {
		return nil, err
	}
	dataGz, err := gzipBytes(dataTar)
	if err != nil {
		return nil, err
	}
	controlGz, err := gzipBytes(controlTar)
	if err != nil {
		return nil, err
	}
	outer, err := writeTar([]tarEntry{
		{name: "./debian-binary", mode: 0o644, data: []byte(DebianBinary)},
		{name: "./data.tar.gz", mode: 0o644, data: dataGz},
		{name: "./control.tar.gz", mode: 0o644, data: controlGz},
	}, mtime)
	if err != nil {
		return nil, err
	}
	ipk, err := gzipBytes(outer)
	if err != nil {
		return nil, err
	}
	return &Built{IPK: ipk, DataTar: dataTar, ControlTar: controlTar, InstalledSize: int64(len(dataTar))}, nil
}
