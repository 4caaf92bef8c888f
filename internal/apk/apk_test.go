package apk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

func openwrtPackage(t *testing.T) *Package {
	t.Helper()
	o := &OpenWrt{
		Info: Info{
			Name: "carpd", Version: "0.1.0_git5~1a2b3c4-r1", Description: "CARP for OpenWrt",
			Arch: "mips_24kc", License: "BSD-2-Clause", Origin: "package/carpd",
			Depends: []string{"libc"}, Provides: []string{"carpd-any"},
		},
		Files: []File{
			{Path: "/usr/sbin/carpd", Mode: 0o755, Data: bytes.Repeat([]byte("\x7fELF"), 300)},
			{Path: "/etc/init.d/carpd", Mode: 0o755, Data: []byte("#!/bin/sh /etc/rc.common\n")},
			{Path: "/etc/config/carpd", Mode: 0o600, Data: []byte("config carpd\n")},
			{Path: "/etc/hotplug.d/carp/50-carpd-services", Mode: 0o644, Data: []byte("SERVICES=\n")},
			{Path: "/etc/hotplug.d/carp/empty", Mode: 0o644},
		},
		Conffiles:       []string{"/etc/config/carpd", "/etc/hotplug.d/carp/50-carpd-services", "/etc/carpd.d/"},
		SourceDateEpoch: 1700000000,
	}
	p, err := o.Package()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRoundTrip: Read gives back every field, file, mode and script.
func TestRoundTrip(t *testing.T) {
	p := openwrtPackage(t)
	b, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(b.APK)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Compressed || c.Signatures != 0 {
		t.Errorf("compressed %v, %d signatures", c.Compressed, c.Signatures)
	}
	in := p.Info
	if c.Info.Name != in.Name || c.Info.Version != in.Version || c.Info.Arch != in.Arch ||
		c.Info.Description != in.Description || c.Info.License != in.License || c.Info.Origin != in.Origin ||
		!slices.Equal(c.Info.Depends, in.Depends) || !slices.Equal(c.Info.Provides, in.Provides) {
		t.Errorf("info %+v, want %+v", c.Info, in)
	}
	if c.Scripts != p.Scripts {
		t.Errorf("scripts %+v, want %+v", c.Scripts, p.Scripts)
	}
	var size uint64
	for _, f := range p.Files {
		e, ok := c.File(f.Path)
		if !ok {
			t.Errorf("%s missing", f.Path)
			continue
		}
		if e.Mode != f.Mode || e.User != "root" || e.Group != "root" || !bytes.Equal(e.Data, f.Data) ||
			e.MTime != 1700000000 || e.Size != uint64(len(f.Data)) {
			t.Errorf("%s: %+v, want mode %v and %d bytes", f.Path, e, f.Mode, len(f.Data))
		}
		size += uint64(len(f.Data))
	}
	if c.InstalledSize != size || b.InstalledSize != int64(size) {
		t.Errorf("installed size %d (built %d), want %d", c.InstalledSize, b.InstalledSize, size)
	}
	// Every directory, 0755, root first, then sorted.
	var dirs []string
	for _, e := range c.Entries {
		if e.Dir {
			dirs = append(dirs, e.Path)
			if e.Mode != 0o755 {
				t.Errorf("directory %s mode %v", e.Path, e.Mode)
			}
		}
	}
	want := []string{"/", "/etc", "/etc/config", "/etc/hotplug.d", "/etc/hotplug.d/carp", "/etc/init.d",
		"/lib", "/lib/apk", "/lib/apk/packages", "/lib/upgrade", "/lib/upgrade/keep.d", "/usr", "/usr/sbin"}
	if !slices.Equal(dirs, want) {
		t.Errorf("directories %q\nwant %q", dirs, want)
	}
}

// TestOpenWrtMetadata: the files package-pack.mk adds.
func TestOpenWrtMetadata(t *testing.T) {
	p := openwrtPackage(t)
	get := func(path string) string {
		for _, f := range p.Files {
			if f.Path == path {
				if f.Mode != 0o644 {
					t.Errorf("%s mode %v", path, f.Mode)
				}
				return string(f.Data)
			}
		}
		t.Errorf("no %s", path)
		return ""
	}
	list := "/etc/config/carpd\n/etc/hotplug.d/carp/50-carpd-services\n/etc/hotplug.d/carp/empty\n" +
		"/etc/init.d/carpd\n/lib/upgrade/keep.d/carpd\n/usr/sbin/carpd\n"
	if got := get("/lib/apk/packages/carpd.list"); got != list {
		t.Errorf("list:\n%s\nwant\n%s", got, list)
	}
	if got := get("/lib/apk/packages/carpd.conffiles"); got != "/etc/config/carpd\n/etc/hotplug.d/carp/50-carpd-services\n/etc/carpd.d/\n" {
		t.Errorf("conffiles %q", got)
	}
	conf := sha256.Sum256([]byte("config carpd\n"))
	hook := sha256.Sum256([]byte("SERVICES=\n"))
	static := "/etc/config/carpd " + hexs(conf[:]) + "\n/etc/hotplug.d/carp/50-carpd-services " + hexs(hook[:]) + "\n"
	if got := get("/lib/apk/packages/carpd.conffiles_static"); got != static {
		t.Errorf("conffiles_static:\n%s\nwant\n%s", got, static)
	}
	if got := get("/lib/upgrade/keep.d/carpd"); got != "/etc/carpd.d/\n" {
		t.Errorf("keep.d %q", got)
	}
	if _, err := (&OpenWrt{Info: p.Info, Files: []File{{Path: "/lib/apk/packages/carpd.list", Mode: 0o644}},
		SourceDateEpoch: 1}).Package(); err == nil {
		t.Error("a shipped .list was accepted")
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

// TestOpenWrtScripts: the exact stubs package-pack.mk echoes, and the
// package's own postinst appended without its shebang.
func TestOpenWrtScripts(t *testing.T) {
	s := OpenWrtScripts("luci-app-carpd", "#!/bin/sh\n[ -n \"${IPKG_INSTROOT}\" ] || {\n\trm -f /tmp/luci-indexcache*\n\texit 0\n}\n", "")
	post := `#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
export root="${IPKG_INSTROOT}"
export pkgname="luci-app-carpd"
add_group_and_user
default_postinst
[ -n "${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache*
	exit 0
}
`
	if s.PostInstall != post {
		t.Errorf("post-install:\n%s\nwant\n%s", s.PostInstall, post)
	}
	if want := "#!/bin/sh\nexport PKG_UPGRADE=1\n" + strings.TrimPrefix(post, "#!/bin/sh\n"); s.PostUpgrade != want {
		t.Errorf("post-upgrade:\n%s\nwant\n%s", s.PostUpgrade, want)
	}
	prerm := `#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
export root="${IPKG_INSTROOT}"
export pkgname="luci-app-carpd"
default_prerm
`
	if s.PreDeinstall != prerm {
		t.Errorf("pre-deinstall:\n%s\nwant\n%s", s.PreDeinstall, prerm)
	}
	if s.PreInstall != "" || s.PostDeinstall != "" || s.PreUpgrade != "" || s.Trigger != "" {
		t.Errorf("unexpected scripts %+v", s)
	}
}

// TestReproducible: the same package gives the same bytes, and a
// different epoch different ones.
func TestReproducible(t *testing.T) {
	a, err := openwrtPackage(t).Build()
	if err != nil {
		t.Fatal(err)
	}
	b, err := openwrtPackage(t).Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.APK, b.APK) {
		t.Error("two builds differ")
	}
	p := openwrtPackage(t)
	p.SourceDateEpoch++
	c, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.APK, c.APK) {
		t.Error("the epoch does not reach the package")
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(p *Package){
		"name":       func(p *Package) { p.Info.Name = "-carpd" },
		"tilde":      func(p *Package) { p.Info.Version = "0.1.0~git5-r1" },
		"no release": func(p *Package) { p.Info.Version = "0.1.0-1" },
		"arch":       func(p *Package) { p.Info.Arch = "" },
		"epoch":      func(p *Package) { p.SourceDateEpoch = 0 },
		"newline":    func(p *Package) { p.Info.Description = "a\nb" },
		"dep twice":  func(p *Package) { p.Info.Depends = []string{"libc", "libc"} },
		"relative":   func(p *Package) { p.Files[0].Path = "usr/sbin/carpd" },
		"setuid":     func(p *Package) { p.Files[0].Mode |= fs.ModeSetuid },
		"twice":      func(p *Package) { p.Files = append(p.Files, p.Files[0]) },
		"file as dir": func(p *Package) {
			p.Files = append(p.Files, File{Path: "/usr/sbin/carpd/x", Mode: 0o644})
		},
	} {
		p := goldenPackage()
		mod(p)
		if _, err := p.Build(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, v := range []string{"1", "0.0.0_git33~2a841be-r1", "1.2.3a_rc1_p2-r10", "25.12.0-r1"} {
		if !ValidVersion(v) {
			t.Errorf("ValidVersion(%q) = false", v)
		}
	}
}

// TestReadRejects: corrupt packages are errors, never panics.
func TestReadRejects(t *testing.T) {
	b, err := openwrtPackage(t).Build()
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(magicADB), b.Stream[4:]...) // uncompressed form
	if _, err := Read(raw); err != nil {
		t.Fatalf("uncompressed package: %v", err)
	}
	lastData := bytes.LastIndex(raw, []byte("SERVICES=\n"))
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":     {nil, io.ErrUnexpectedEOF},
		"magic":     {[]byte("PK\x03\x04xxxxxxxx"), errMagic},
		"zstd":      {[]byte("ADBc\x02\x00"), errCompression},
		"truncated": {raw[:len(raw)-9], io.ErrUnexpectedEOF},
		"schema":    {append([]byte("ADB.indx"), raw[8:]...), errSchema},
		"data":      {flip(raw, lastData), errIntegrity},
		"no data":   {raw[:bytes.Index(raw, []byte("\x7fELF"))-12], errIntegrity},
		"deflate":   {append([]byte(magicDeflate), 0xff, 0xff), nil},
	} {
		_, err := Read(tc.in)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

// FuzzRead: Read never panics, and whatever it accepts re-encodes to a
// package it reads back the same. The round trip uses the uncompressed
// stream (buildStream, read back as "ADB."): Build's deflate at
// BestCompression made an accepted input cost 1.3 ms instead of 0.08 ms,
// and it is the standard library's, not what this target tests. Seeds stay
// small: go test minimizes every input that finds new coverage with up to
// n² runs for n bytes and shows 0 execs/s meanwhile (seconds for these
// 500-700 B seeds; make fuzz-smoke caps it with -fuzzminimizetime).
func FuzzRead(f *testing.F) {
	ref, err := os.ReadFile("testdata/mkpkg-3.0.6.apk")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ref)
	b, err := goldenPackage().Build()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(magicADB), b.Stream[4:]...))
	f.Add(sharedPackage(f, 2, 3, 2, 4)) // shared objects (TestReadSharedObjects)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Read(in)
		if err != nil {
			return
		}
		p := &Package{Info: c.Info, Scripts: c.Scripts, SourceDateEpoch: 1}
		for _, e := range c.Entries {
			if !e.Dir {
				p.Files = append(p.Files, File{Path: e.Path, Mode: e.Mode & fs.ModePerm, Data: e.Data})
			}
		}
		out, err := p.buildStream()
		if err != nil {
			return // e.g. a version or name only the reader is lenient about
		}
		c2, err := Read(append([]byte(magicADB), out.Stream[4:]...))
		if err != nil {
			t.Fatalf("re-encoded package unreadable: %v", err)
		}
		if c2.Scripts != c.Scripts || c2.Info.Name != c.Info.Name || len(c2.Entries) < len(p.Files) {
			t.Fatalf("round trip changed the package: %+v / %+v", c.Info, c2.Info)
		}
	})
}
