package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/carpd/carpd/internal/apk"
	"github.com/carpd/carpd/internal/ipk"
)

// apkPackage turns the package this command builds as an .ipk into the
// .apk OpenWrt 25's SDK makes of the same feed Makefile
// (include/package-pack.mk, CONFIG_USE_APK): the same name, version,
// files, modes, dependencies and scripts; arch "all" becomes noarch; the
// description is one line ($(strip ...)); the SDK's implicit virtual
// provide @<name>-any is added; conffiles become OpenWrt's
// /lib/apk/packages/<name>.conffiles lists (apk itself keeps a changed
// /etc file on upgrade).
func apkPackage(p *ipk.Package) (*apk.Package, error) {
	c := p.Control
	arch := c.Architecture
	if arch == "all" {
		arch = "noarch"
	}
	files := slices.Clone(p.Files) // apk.File is ipk.File (internal/pkgfile)
	o := &apk.OpenWrt{
		Info: apk.Info{
			Name:        c.Package,
			Version:     c.Version,
			Description: strings.Join(strings.Fields(c.Description), " "),
			Arch:        arch,
			License:     c.License,
			Origin:      c.Source,
			Maintainer:  c.Maintainer,
			URL:         c.URL,
			Depends:     c.Depends,
			Provides:    append(slices.Clone(c.Provides), c.Package+"-any"),
		},
		Files:           files,
		Conffiles:       p.Conffiles,
		PostinstPkg:     p.PostinstPkg,
		SourceDateEpoch: c.SourceDateEpoch,
	}
	return o.Package()
}

// writeAPK writes <out>/<arch>/<name>-<version>.apk, the layout of an apk
// repository ("${arch}/${name}-${version}.apk"), and removes older
// versions of the same package there.
func writeAPK(p *ipk.Package, out string, stdout io.Writer) error {
	a, err := apkPackage(p)
	if err != nil {
		return err
	}
	built, err := a.Build()
	if err != nil {
		return err
	}
	dir := filepath.Join(out, a.Info.Arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := filepath.Join(dir, a.FileName())
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, built.APK, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, a.Info.Name+"-*.apk"))
	for _, o := range old {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(o), a.Info.Name+"-"), ".apk")
		if o != name && apk.ValidVersion(v) {
			if err := os.Remove(o); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "%s: %d bytes (installed %d, %d files)\n", name, len(built.APK), built.InstalledSize, len(a.Files))
	return nil
}
