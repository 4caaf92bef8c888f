// Command mkipk builds carpd's OpenWrt packages without the OpenWrt SDK:
// carpd_<version>_<arch>.ipk, and with -luci luci-app-carpd_<version>_all.ipk.
// Each has the same files, modes, conffiles, control fields and maintainer
// scripts as its feed Makefile (package/carpd, package/luci-app-carpd)
// gives inside the SDK (tests keep them in step), written by internal/ipk.
//
//	mkipk -bin dist/carpd-mips_24kc -arch mips_24kc -version 0.1.0-r1 \
//	      -epoch "$(git log -1 --format=%ct)" [-files package/carpd/files] [-out dist]
//	mkipk -luci package/luci-app-carpd -version 0.1.0-r1 -epoch ... [-out dist]
//
// With -format apk it writes the same package as OpenWrt 25's apk-tools v3
// .apk instead: <out>/<arch>/<name>-<version>.apk (internal/apk).
//
// The binary is checked first: ELF machine, byte order and class for the
// architecture, static, and soft float on MIPS. Older carpd_*_<arch>.ipk
// in the output directory are removed, as the SDK does. The same inputs
// give the same bytes (SOURCE_DATE_EPOCH is every mtime).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/carpd/carpd/internal/ipk"
)

// Package metadata; package/carpd/Makefile has the same (see main_test.go).
const (
	pkgName      = "carpd"
	pkgSource    = "package/carpd" // the feed Makefile's directory in this repository
	pkgLicense   = "BSD-2-Clause"
	pkgLicFiles  = "LICENSE"
	pkgSection   = "net"
	pkgURL       = "https://github.com/carpd/carpd"
	pkgDescribed = `carpd brings OpenBSD's CARP to OpenWrt: routers share virtual IP
addresses, and when the master fails a backup takes them over within
three advertisement intervals. Wire-compatible with OpenBSD, FreeBSD and
ucarp. Optionally replicates the conntrack table to the peer, so
established and NATed connections survive the failover.`
)

// depends: the SDK adds libc to every non-kmod package. Our static binary
// needs none, but the SDK-built package of the same version (CGO, linked
// against musl) does; declaring it keeps the two interchangeable for opkg
// and costs nothing (libc is in every image).
var depends = []string{"libc"}

// conffiles: the UCI config, and the hotplug hook users are told to edit
// (its SERVICES list) -- an upgrade must not reset either.
var conffiles = []string{"/etc/config/carpd", "/etc/hotplug.d/carp/50-carpd-services"}

// layout returns the installed files: what Package/carpd/install does with
// INSTALL_BIN (0755), INSTALL_CONF (0600) and INSTALL_DATA (0644).
func layout(bin, filesDir string) ([]ipk.File, error) {
	var files []ipk.File
	add := func(src, dst string, mode fs.FileMode) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files = append(files, ipk.File{Path: dst, Mode: mode, Data: b})
		return nil
	}
	for _, f := range []struct {
		src, dst string
		mode     fs.FileMode
	}{
		{bin, "/usr/sbin/carpd", 0o755},
		{filepath.Join(filesDir, "carpd.init"), "/etc/init.d/carpd", 0o755},
		{filepath.Join(filesDir, "carpd.config"), "/etc/config/carpd", 0o600},
		// The collector prometheus-node-exporter-lua loads, when it is
		// installed (docs/metrics.md); a module, not a program: 0644.
		{filepath.Join(filesDir, "prometheus-collectors/carpd.lua"), "/usr/lib/lua/prometheus-collectors/carpd.lua", 0o644},
	} {
		if err := add(f.src, f.dst, f.mode); err != nil {
			return nil, err
		}
	}
	// Hotplug hooks are sourced by hotplug-call, not executed: 0644.
	hooks, err := os.ReadDir(filepath.Join(filesDir, "hotplug.d"))
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if !h.Type().IsRegular() {
			continue
		}
		if err := add(filepath.Join(filesDir, "hotplug.d", h.Name()), "/etc/hotplug.d/carp/"+h.Name(), 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// newPackage assembles the package for one architecture.
func newPackage(bin, filesDir, version, arch string, epoch int64) (*ipk.Package, error) {
	files, err := layout(bin, filesDir)
	if err != nil {
		return nil, err
	}
	if _, err := ipk.CheckBinary(arch, files[0].Data); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	return &ipk.Package{
		Control: ipk.Control{
			Package:         pkgName,
			Version:         version,
			Depends:         depends,
			Source:          pkgSource,
			SourceName:      pkgName,
			License:         pkgLicense,
			LicenseFiles:    pkgLicFiles,
			Section:         pkgSection,
			SourceDateEpoch: epoch,
			URL:             pkgURL,
			Architecture:    arch,
			Description:     pkgDescribed,
		},
		Files:     files,
		Conffiles: conffiles,
	}, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("mkipk", flag.ContinueOnError)
	fl.SetOutput(stderr)
	bin := fl.String("bin", "", "the static carpd binary for -arch (required)")
	filesDir := fl.String("files", "package/carpd/files", "carpd's package files directory")
	version := fl.String("version", "", "package version, e.g. 0.1.0-r1 (package/version.sh plus -rN) (required)")
	arch := fl.String("arch", "", "OpenWrt architecture, e.g. mips_24kc (required)")
	epochFlag := fl.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "seconds since 1970 for every mtime and SourceDateEpoch (default $SOURCE_DATE_EPOCH)")
	out := fl.String("out", "dist", "output directory")
	luci := fl.String("luci", "", "instead: build luci-app-carpd (Architecture all) from this `directory` (package/luci-app-carpd)")
	format := fl.String("format", "ipk", "ipk (opkg, OpenWrt <= 24.10), or apk (apk-tools v3, OpenWrt 25.12+: -out/<arch>/<name>-<version>.apk)")
	sizes := fl.String("size-report", "", "instead: print a Markdown table of what each dependency costs in this unstripped `binary` (-bin: its stripped twin, to scale the estimates)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *sizes != "" {
		return sizeReport(stdout, *sizes, *bin)
	}
	if *luci != "" {
		if *bin != "" || *arch != "" {
			return errors.New("mkipk: -luci builds an Architecture all package: no -bin or -arch")
		}
		*arch = "all"
	}
	if (*bin == "" && *luci == "") || *version == "" || *arch == "" || *epochFlag == "" || fl.NArg() > 0 {
		fl.Usage()
		return errors.New("mkipk: -bin (or -luci), -version, -arch and -epoch (or SOURCE_DATE_EPOCH) are required")
	}
	epoch, err := strconv.ParseInt(*epochFlag, 10, 64)
	if err != nil {
		return fmt.Errorf("mkipk: -epoch %q: %w", *epochFlag, err)
	}
	var p *ipk.Package
	if *luci != "" {
		p, err = newLuciPackage(*luci, *version, epoch)
	} else {
		p, err = newPackage(*bin, *filesDir, *version, *arch, epoch)
	}
	if err != nil {
		return err
	}
	switch *format {
	case "apk":
		return writeAPK(p, *out, stdout)
	case "ipk":
	default:
		return fmt.Errorf("mkipk: -format %q: ipk or apk", *format)
	}
	built, err := p.Build()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	name := filepath.Join(*out, p.FileName())
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, built.IPK, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(*out, p.Control.Package+"_*_"+*arch+".ipk"))
	for _, o := range slices.DeleteFunc(old, func(s string) bool { return s == name }) {
		if err := os.Remove(o); err != nil {
			return err
		}
	}
	if *luci != "" {
		fmt.Fprintf(stdout, "%s: %d bytes (installed %d, %d files)\n", name, len(built.IPK), built.InstalledSize, len(p.Files))
		return nil
	}
	fmt.Fprintf(stdout, "%s: %d bytes (installed %d, binary %d)\n", name, len(built.IPK), built.InstalledSize, len(p.Files[0].Data))
	return nil
}

// sizeReport prints what each dependency costs: .text and data symbols by
// module (measured on the unstripped binary), and an estimate of its share
// of the stripped file, which also holds type descriptors, strings and the
// pcln tables (about as much again as the code, spread in proportion).
func sizeReport(w io.Writer, unstripped, stripped string) error {
	full, err := os.ReadFile(unstripped)
	if err != nil {
		return err
	}
	r, err := ipk.Sizes(full)
	if err != nil {
		return err
	}
	fileSize := r.FileSize
	if stripped != "" {
		fi, err := os.Stat(stripped)
		if err != nil {
			return err
		}
		fileSize = fi.Size()
	}
	var total int64
	groups := map[string]*ipk.PackageSize{}
	for _, p := range r.Packages {
		m := ipk.Module(p.Package, "github.com/carpd/carpd")
		if groups[m] == nil {
			groups[m] = &ipk.PackageSize{Package: m}
		}
		groups[m].Text += p.Text
		groups[m].Data += p.Data
		total += p.Text + p.Data
	}
	scale := float64(fileSize) / float64(total)
	table := func(title string, rows []ipk.PackageSize, limit int) {
		fmt.Fprintf(w, "\n| %s | .text | data | share of the file (est.) |\n|---|---:|---:|---:|\n", title)
		var rest ipk.PackageSize
		for i, p := range rows {
			if i >= limit {
				rest.Text += p.Text
				rest.Data += p.Data
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %d | %d (%.1f %%) |\n", p.Package, p.Text, p.Data,
				int64(float64(p.Text+p.Data)*scale), 100*float64(p.Text+p.Data)/float64(total))
		}
		if rest.Text+rest.Data > 0 {
			fmt.Fprintf(w, "| (%d more) | %d | %d | %d (%.1f %%) |\n", len(rows)-limit, rest.Text, rest.Data,
				int64(float64(rest.Text+rest.Data)*scale), 100*float64(rest.Text+rest.Data)/float64(total))
		}
	}
	var byModule []ipk.PackageSize
	for _, g := range groups {
		byModule = append(byModule, *g)
	}
	slices.SortFunc(byModule, func(a, b ipk.PackageSize) int { return int((b.Text + b.Data) - (a.Text + a.Data)) })
	fmt.Fprintf(w, "%s: %d bytes unstripped; stripped file %d bytes; symbols attributed %d bytes "+
		"(x %.2f = the file: types, strings and pcln tables spread in proportion)\n",
		filepath.Base(unstripped), r.FileSize, fileSize, total, scale)
	fmt.Fprintf(w, "\nSections (file bytes):")
	for _, s := range slices.Sorted(maps.Keys(r.Sections)) {
		if r.Sections[s] >= 1024 {
			fmt.Fprintf(w, " %s %d;", s, r.Sections[s])
		}
	}
	fmt.Fprintln(w)
	table("module", byModule, 40)
	table("package", r.Packages, 40)
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
