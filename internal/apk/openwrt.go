package apk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// OpenWrt is a package as an OpenWrt feed Makefile describes it. Its
// Package method adds what OpenWrt 25's include/package-pack.mk adds
// before it runs `apk mkpkg`:
//
//   - /lib/apk/packages/<name>.list: every file of the package, sorted,
//     one absolute path a line (default_postinst and default_prerm read it
//     to find the init scripts to enable and start, stop and disable);
//   - /lib/apk/packages/<name>.conffiles: Package/<name>/conffiles as
//     written, and <name>.conffiles_static: "<path> <sha256>" for each entry
//     that is a regular file of the package (sysupgrade and `apk audit`
//     tell a changed config from a shipped one with it);
//   - /lib/upgrade/keep.d/<name>: conffiles entries that are not files of
//     the package, so sysupgrade keeps them anyway;
//   - post-install: source /lib/functions.sh, export root and pkgname, run
//     add_group_and_user and default_postinst (enable and start the init
//     scripts, run uci-defaults), then the package's own postinst;
//     post-upgrade: the same with PKG_UPGRADE=1 (start, but leave the
//     enabled state alone); pre-deinstall: default_prerm (stop, disable)
//     and the package's own prerm.
//
// The config files themselves are kept on upgrade by apk, not by a list
// in the package: everything under /etc is a protected path ("+etc" in
// apk's defaults), so a file the user changed stays and the package's new
// copy is written beside it as <file>.apk-new.
type OpenWrt struct {
	Info            Info
	Files           []File
	Conffiles       []string // Package/<name>/conffiles, absolute paths
	PostinstPkg     string   // Package/<name>/postinst, or empty
	PrermPkg        string   // Package/<name>/prerm, or empty
	SourceDateEpoch int64
}

// The maintainer-script stubs package-pack.mk echoes for apk (the lines
// after "#!/bin/sh"; pkgname follows "export pkgname=").
const (
	scriptHeader    = "#!/bin/sh\n"
	postinstPrelude = "[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0\n"
	functionsSource = "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n" +
		". ${IPKG_INSTROOT}/lib/functions.sh\n" +
		"export root=\"${IPKG_INSTROOT}\"\n"
	upgradeExport = "export PKG_UPGRADE=1\n"
)

// shebangLine is the sed '/^\s*#!/d' package-pack.mk runs on the
// package's own scripts before appending them.
var shebangLine = regexp.MustCompile(`(?m)^[ \t\v\f\r]*#!.*\n?`)

// packageScript is what package-pack.mk's BuildPackVariable writes for a
// Package/<name>/<script> define (echo adds the final newline), with the
// shebang lines removed.
func packageScript(s string) string {
	if s == "" {
		return ""
	}
	return shebangLine.ReplaceAllString(strings.TrimRight(s, "\n")+"\n", "")
}

// OpenWrtScripts returns the scripts package-pack.mk generates for a
// package named name with the given own postinst and prerm (either may be
// empty).
func OpenWrtScripts(name, postinstPkg, prermPkg string) Scripts {
	pkgname := "export pkgname=\"" + name + "\"\n"
	post := scriptHeader + postinstPrelude + functionsSource + pkgname +
		"add_group_and_user\ndefault_postinst\n" + packageScript(postinstPkg)
	return Scripts{
		PostInstall:  post,
		PostUpgrade:  scriptHeader + upgradeExport + shebangLine.ReplaceAllString(post, ""),
		PreDeinstall: scriptHeader + functionsSource + pkgname + "default_prerm\n" + packageScript(prermPkg),
	}
}

// Package returns the apk package with OpenWrt's metadata files and
// scripts added.
func (o *OpenWrt) Package() (*Package, error) {
	name := o.Info.Name
	meta := "/lib/apk/packages/" + name
	files := slices.Clone(o.Files)
	isFile := map[string]bool{}
	for _, f := range files {
		isFile[f.Path] = true
		if strings.HasPrefix(f.Path, "/lib/apk/packages/") || f.Path == "/lib/upgrade/keep.d/"+name {
			return nil, fmt.Errorf("apk: %s is generated; do not ship it", f.Path)
		}
	}
	// KEEP_<name>: entries that are not files go to keep.d (package-pack.mk
	// tests [ -f "$IDIR/$x" ]).
	var keep []string
	for _, c := range o.Conffiles {
		if !path.IsAbs(c) || strings.ContainsAny(c, " \t\n") {
			return nil, fmt.Errorf("apk: conffile %q must be an absolute path without blanks", c)
		}
		if !isFile[path.Clean(c)] {
			keep = append(keep, c)
		}
	}
	if len(keep) > 0 {
		files = append(files, File{Path: "/lib/upgrade/keep.d/" + name, Mode: 0o644, Data: []byte(strings.Join(keep, "\n") + "\n")})
	}
	// The list: find . -type f,l -printf "/%P\n" | sort, taken before the
	// conffiles lists are moved in (and without itself).
	var list []string
	for _, f := range files {
		list = append(list, f.Path)
	}
	slices.Sort(list)
	files = append(files, File{Path: meta + ".list", Mode: 0o644, Data: []byte(strings.Join(list, "\n") + "\n")})
	if len(o.Conffiles) > 0 {
		files = append(files, File{Path: meta + ".conffiles", Mode: 0o644, Data: []byte(strings.Join(o.Conffiles, "\n") + "\n")})
		var static strings.Builder
		for _, c := range o.Conffiles {
			i := slices.IndexFunc(o.Files, func(f File) bool { return f.Path == path.Clean(c) })
			if i < 0 {
				continue
			}
			sum := sha256.Sum256(o.Files[i].Data)
			static.WriteString(c + " " + hex.EncodeToString(sum[:]) + "\n")
		}
		if static.Len() > 0 {
			files = append(files, File{Path: meta + ".conffiles_static", Mode: 0o644, Data: []byte(static.String())})
		}
	}
	return &Package{
		Info:            o.Info,
		Files:           files,
		Scripts:         OpenWrtScripts(name, o.PostinstPkg, o.PrermPkg),
		SourceDateEpoch: o.SourceDateEpoch,
	}, nil
}
