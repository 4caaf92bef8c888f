package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/carpd/carpd/internal/ipk"
)

// luci-app-carpd's metadata; package/luci-app-carpd/Makefile has the same
// (luci.mk turns LUCI_TITLE, LUCI_DESCRIPTION and LUCI_DEPENDS into these;
// feed_test.go keeps the two in step).
const (
	luciName      = "luci-app-carpd"
	luciSource    = "package/luci-app-carpd"
	luciSection   = "luci" // luci.mk: SECTION:=luci
	luciDescribed = "Status and configuration pages for carpd: the CARP state of every vhid, " +
		"the state-sync peer and bulk transfer, maintenance mode and resync, and a form " +
		"for /etc/config/carpd."
)

// luciDepends: LUCI_DEPENDS:=+luci-base +carpd, with the libc the SDK adds
// to every package that is not a kernel module (luci-app-* packages from
// the SDK say "Depends: libc, luci-base, ..." too, Architecture all or not).
var luciDepends = []string{"libc", "luci-base", "carpd"}

// luciPostinst is luci.mk's default Package/<name>/postinst, which
// default_postinst sources on a live system: drop LuCI's menu index and
// module caches so the new pages show up, and make rpcd re-read its ACLs.
const luciPostinst = `#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache*
	rm -rf /tmp/luci-modulecache/
	killall -HUP rpcd 2>/dev/null
	exit 0
}
`

// luciLayout returns the installed files of a LuCI app directory the way
// luci.mk installs them: htdocs/ under /www, root/ under /. Everything is
// data (0644): the views, the menu and the ACL. An executable file in the
// tree is refused, since luci.mk's cp -p would keep its mode and the two
// packages would differ.
func luciLayout(dir string) ([]ipk.File, error) {
	var files []ipk.File
	for _, m := range []struct{ src, dst string }{{"htdocs", "/www"}, {"root", "/"}} {
		base := filepath.Join(dir, m.src)
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("mkipk: %s is not a regular file", p)
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o111 != 0 {
				return fmt.Errorf("mkipk: %s is executable; LuCI app files are data (chmod 0644)", p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(base, p)
			files = append(files, ipk.File{Path: path.Join(m.dst, filepath.ToSlash(rel)), Mode: 0o644, Data: b})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("mkipk: no files under %s/htdocs or %s/root", dir, dir)
	}
	slices.SortFunc(files, func(a, b ipk.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// newLuciPackage assembles luci-app-carpd_<version>_all.ipk.
func newLuciPackage(dir, version string, epoch int64) (*ipk.Package, error) {
	files, err := luciLayout(dir)
	if err != nil {
		return nil, err
	}
	return &ipk.Package{
		Control: ipk.Control{
			Package:         luciName,
			Version:         version,
			Depends:         luciDepends,
			Source:          luciSource,
			SourceName:      luciName,
			License:         pkgLicense,
			Section:         luciSection,
			SourceDateEpoch: epoch,
			Architecture:    "all",
			Description:     luciDescribed,
		},
		Files:       files,
		PostinstPkg: luciPostinst,
	}, nil
}
