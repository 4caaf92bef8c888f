package ipk

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const testEpoch = 1795565376 // 2026-11-25T00:09:36Z

func testPackage() *Package {
	return &Package{
		Control: Control{
			Package: "carpd", Version: "0.1.0_git5~2a841be-r1", Depends: []string{"libc"},
			Source: "package/carpd", SourceName: "carpd", License: "BSD-2-Clause", LicenseFiles: "LICENSE",
			Section: "net", SourceDateEpoch: testEpoch, URL: "https://example.org/carpd",
			Architecture: "mips_24kc",
			Description:  "  CARP for OpenWrt.\n\tSecond line.\n",
		},
		Files: []File{
			{Path: "/usr/sbin/carpd", Mode: 0o755, Data: bytes.Repeat([]byte("\x7fELF"), 300)},
			{Path: "/etc/init.d/carpd", Mode: 0o755, Data: []byte("#!/bin/sh /etc/rc.common\n")},
			{Path: "/etc/config/carpd", Mode: 0o600, Data: []byte("config carpd 'global'\n")},
			{Path: "/etc/hotplug.d/carp/50-carpd-services", Mode: 0o644, Data: []byte("SERVICES=\"\"\n")},
			{Path: "/etc/hotplug.d/carp/10-carpd-log", Mode: 0o644, Data: []byte("logger x\n")},
		},
		Conffiles: []string{"/etc/hotplug.d/carp/", "/etc/config/carpd", "/etc/carpd/keys"},
	}
}

func build(t *testing.T, p *Package) (*Built, *Contents) {
	t.Helper()
	b, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(b.IPK)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func TestLayout(t *testing.T) {
	b, c := build(t, testPackage())

	var names []string
	for _, e := range c.Outer {
		names = append(names, e.Name)
	}
	if want := []string{"./debian-binary", "./data.tar.gz", "./control.tar.gz"}; !slices.Equal(names, want) {
		t.Errorf("outer members %q, want %q", names, want)
	}
	for _, h := range []struct {
		what string
		os   byte
		name string
		zero bool
	}{
		{"ipk", c.OuterGzip.OS, c.OuterGzip.Name, c.OuterGzip.ModTime.IsZero()},
		{"data", c.DataGzip.OS, c.DataGzip.Name, c.DataGzip.ModTime.IsZero()},
		{"control", c.CtrlGzip.OS, c.CtrlGzip.Name, c.CtrlGzip.ModTime.IsZero()},
	} {
		if h.os != 3 || h.name != "" || !h.zero {
			t.Errorf("%s gzip header: OS %d name %q mtime-zero %v, want gzip -n's 3 \"\" true", h.what, h.os, h.name, h.zero)
		}
	}

	type ent struct {
		name string
		mode int64
		dir  bool
	}
	want := []ent{
		{"./", 0o755, true},
		{"./etc/", 0o755, true},
		{"./etc/config/", 0o755, true},
		{"./etc/config/carpd", 0o600, false},
		{"./etc/hotplug.d/", 0o755, true},
		{"./etc/hotplug.d/carp/", 0o755, true},
		{"./etc/hotplug.d/carp/10-carpd-log", 0o644, false},
		{"./etc/hotplug.d/carp/50-carpd-services", 0o644, false},
		{"./etc/init.d/", 0o755, true},
		{"./etc/init.d/carpd", 0o755, false},
		{"./lib/", 0o755, true},
		{"./lib/upgrade/", 0o755, true},
		{"./lib/upgrade/keep.d/", 0o755, true},
		{"./lib/upgrade/keep.d/carpd", 0o644, false},
		{"./usr/", 0o755, true},
		{"./usr/sbin/", 0o755, true},
		{"./usr/sbin/carpd", 0o755, false},
	}
	var got []ent
	for _, e := range c.Data {
		got = append(got, ent{e.Name, e.Mode, e.IsDir()})
		if e.UID != 0 || e.GID != 0 || e.Uname != "" || e.Gname != "" || e.ModTime != testEpoch || e.Format != tar.FormatGNU {
			t.Errorf("%s: uid %d gid %d uname %q gname %q mtime %d format %v", e.Name, e.UID, e.GID, e.Uname, e.Gname, e.ModTime, e.Format)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("data entries:\n got %v\nwant %v", got, want)
	}
	if e, _ := c.DataFile("/lib/upgrade/keep.d/carpd"); string(e.Data) != "/etc/hotplug.d/carp/\n/etc/carpd/keys\n" {
		// Like package-pack.mk: every entry that is not a regular file
		// (a directory too), in the given order.
		t.Errorf("keep.d: %q", e.Data)
	}
	if e, _ := c.DataFile("/usr/sbin/carpd"); len(e.Data) != 1200 {
		t.Errorf("binary: %d bytes", len(e.Data))
	}

	var ctl []ent
	for _, e := range c.Control {
		ctl = append(ctl, ent{e.Name, e.Mode, e.IsDir()})
	}
	if want := []ent{{"./", 0o755, true}, {"./conffiles", 0o644, false}, {"./control", 0o644, false},
		{"./postinst", 0o755, false}, {"./prerm", 0o755, false}}; !slices.Equal(ctl, want) {
		t.Errorf("control entries %v, want %v", ctl, want)
	}
	if e, _ := c.ControlFile("conffiles"); string(e.Data) != "/etc/config/carpd\n/etc/hotplug.d/carp/10-carpd-log\n/etc/hotplug.d/carp/50-carpd-services\n" {
		t.Errorf("conffiles %q", e.Data)
	}
	if e, _ := c.ControlFile("postinst"); string(e.Data) != Postinst {
		t.Errorf("postinst %q", e.Data)
	}
	if e, _ := c.ControlFile("prerm"); string(e.Data) != Prerm {
		t.Errorf("prerm %q", e.Data)
	}

	// The SDK's field order, Installed-Size in bytes = the uncompressed data tar.
	wantControl := "Package: carpd\n" +
		"Version: 0.1.0_git5~2a841be-r1\n" +
		"Depends: libc\n" +
		"Source: package/carpd\n" +
		"SourceName: carpd\n" +
		"License: BSD-2-Clause\n" +
		"LicenseFiles: LICENSE\n" +
		"Section: net\n" +
		"SourceDateEpoch: 1795565376\n" +
		"URL: https://example.org/carpd\n" +
		"Architecture: mips_24kc\n" +
		"Installed-Size: " + strconv.Itoa(len(c.DataTar)) + "\n" +
		"Description:  CARP for OpenWrt.\n" +
		" Second line.\n"
	if e, _ := c.ControlFile("control"); string(e.Data) != wantControl {
		t.Errorf("control:\n%s\nwant:\n%s", e.Data, wantControl)
	}
	if b.InstalledSize != int64(len(c.DataTar)) || len(c.DataTar)%10240 != 0 {
		t.Errorf("installed size %d, data tar %d bytes (want a multiple of 10240)", b.InstalledSize, len(c.DataTar))
	}
	if c.Field("Installed-Size") != strconv.Itoa(len(c.DataTar)) || c.Field("Description") != "CARP for OpenWrt.\nSecond line." {
		t.Errorf("parsed fields: %q", c.Fields)
	}
	if !bytes.Equal(c.DataTar, b.DataTar) || !bytes.Equal(c.ControlTar, b.ControlTar) {
		t.Error("Read's tars differ from Build's")
	}
	if p := testPackage(); p.FileName() != "carpd_0.1.0_git5~2a841be-r1_mips_24kc.ipk" {
		t.Errorf("file name %s", p.FileName())
	}
}

// TestReproducible: the same package gives the same bytes, whatever the
// order of Files. (The order of Conffiles is kept in keep.d, as the SDK
// keeps it.)
func TestReproducible(t *testing.T) {
	a, err := ipkBytes(testPackage())
	if err != nil {
		t.Fatal(err)
	}
	p := testPackage()
	slices.Reverse(p.Files)
	b, err := ipkBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same package differ")
	}
	p.Control.SourceDateEpoch++
	if c, _ := ipkBytes(p); bytes.Equal(a, c) {
		t.Fatal("SourceDateEpoch does not reach the package")
	}
}

func TestNoConffiles(t *testing.T) {
	p := testPackage()
	p.Conffiles = nil
	_, c := build(t, p)
	if _, ok := c.ControlFile("conffiles"); ok {
		t.Error("conffiles written without conffiles")
	}
	if _, ok := c.DataFile("/lib/upgrade/keep.d/carpd"); ok {
		t.Error("keep.d written without conffiles")
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(p *Package){
		"bad name":         func(p *Package) { p.Control.Package = "carp d" },
		"no version":       func(p *Package) { p.Control.Version = "" },
		"no arch":          func(p *Package) { p.Control.Architecture = "" },
		"no epoch":         func(p *Package) { p.Control.SourceDateEpoch = 0 },
		"no description":   func(p *Package) { p.Control.Description = " \n" },
		"newline in field": func(p *Package) { p.Control.URL = "a\nb" },
		"relative path":    func(p *Package) { p.Files[0].Path = "usr/sbin/carpd" },
		"unclean path":     func(p *Package) { p.Files[0].Path = "/usr//sbin/carpd" },
		"setuid":           func(p *Package) { p.Files[0].Mode |= 1 << 23 },
		"duplicate":        func(p *Package) { p.Files[1].Path = p.Files[0].Path },
		"file as dir":      func(p *Package) { p.Files = append(p.Files, File{Path: "/usr/sbin/carpd/x", Mode: 0o644}) },
		"long name": func(p *Package) {
			p.Files = append(p.Files, File{Path: "/" + strings.Repeat("x", 100), Mode: 0o644})
		},
		"keep.d shipped": func(p *Package) {
			p.Files = append(p.Files, File{Path: "/lib/upgrade/keep.d/carpd", Mode: 0o644})
		},
	} {
		p := testPackage()
		mod(p)
		if _, err := p.Build(); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}

// TestMatchesGNUTar: data.tar and control.tar are byte for byte what
// scripts/ipkg-build gets from GNU tar for the same tree:
// tar --format=gnu --numeric-owner --sort=name -cpf - --mtime=@EPOCH .
func TestMatchesGNUTar(t *testing.T) {
	out, err := exec.Command("tar", "--version").Output()
	if err != nil || !strings.Contains(string(out), "GNU tar") {
		t.Skip("GNU tar not installed")
	}
	b, c := build(t, testPackage())
	gnuTar := func(root string) []byte {
		cmd := exec.Command("tar", "--format=gnu", "--numeric-owner", "--sort=name", "-cpf", "-", "--mtime=@"+strconv.Itoa(testEpoch), ".")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		return out
	}
	materialize := func(root string, es []Entry) {
		for _, e := range es {
			p := filepath.Join(root, e.Name)
			if e.IsDir() {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, e.Data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(e.Mode)); err != nil { // umask-proof
				t.Fatal(err)
			}
		}
	}
	data, ctl := t.TempDir(), t.TempDir()
	materialize(data, c.Data)
	materialize(ctl, c.Control)
	if !bytes.Equal(gnuTar(data), b.DataTar) {
		t.Error("data.tar differs from GNU tar's")
	}
	if !bytes.Equal(gnuTar(ctl), b.ControlTar) {
		t.Error("control.tar differs from GNU tar's")
	}
}

// TestScripts runs postinst and prerm the way opkg does (sh -c "<script>
// configure"), with IPKG_INSTROOT pointing at a root whose
// /lib/functions.sh records the calls.
func TestScripts(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	log := filepath.Join(root, "calls")
	os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(
		"default_postinst() { echo \"postinst $*\" >> \"$IPKG_INSTROOT/calls\"; }\n"+
			"default_prerm() { echo \"prerm $*\" >> \"$IPKG_INSTROOT/calls\"; }\n"), 0o644)
	dir := t.TempDir()
	run := func(script, body, arg string, env ...string) {
		t.Helper()
		path := filepath.Join(dir, script)
		os.WriteFile(path, []byte(body), 0o755)
		cmd := exec.Command("/bin/sh", "-c", path+" "+arg)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v %s", script, arg, err, out)
		}
	}
	run("postinst", Postinst, "configure", "IPKG_INSTROOT="+root)
	run("postinst", Postinst, "configure", "IPKG_INSTROOT="+root, "IPKG_NO_SCRIPT=1")
	run("prerm", Prerm, "remove", "IPKG_INSTROOT="+root)
	run("postinst", Postinst, "configure", "IPKG_INSTROOT="+t.TempDir()) // no functions.sh: quiet no-op
	got, _ := os.ReadFile(log)
	want := "postinst " + dir + "/postinst configure\nprerm " + dir + "/prerm remove\n"
	if string(got) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadRejects(t *testing.T) {
	if _, err := Read([]byte("!<arch>\ndebian-binary   ")); err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Errorf("ar package: %v", err)
	}
	// A package without data.tar.gz.
	outer, _ := writeTar([]tarEntry{{name: "./debian-binary", mode: 0o644, data: []byte(DebianBinary)}}, testEpoch)
	gz, _ := gzipBytes(outer)
	if _, err := Read(gz); err == nil {
		t.Error("package without control and data read")
	}
}

func TestParseControl(t *testing.T) {
	f, err := ParseControl([]byte("Package: x\nDescription:  a\n b\n\tc\n"))
	if err != nil || len(f) != 2 || f[1].Value != "a\nb\nc" {
		t.Errorf("%q %v", f, err)
	}
	for _, bad := range []string{" leading\n", "Package: x\n\nVersion: 1\n", "no colon\n"} {
		if _, err := ParseControl([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSymbolPackage(t *testing.T) {
	for name, want := range map[string]string{
		"encoding/json.(*decodeState).object":                       "encoding/json",
		"slices.SortFunc[go.shape.int]":                             "slices",
		"github.com/carpd/carpd/internal/ctsync/kernel.encodeTuple": "github.com/carpd/carpd/internal/ctsync/kernel",
		"github.com/jsimonetti/rtnetlink/v2.(*Conn).Execute":        "github.com/jsimonetti/rtnetlink/v2",
		"net/netip.Addr.String":                                     "net/netip",
		"vendor/golang.org/x/net/dns/dnsmessage.(*Parser).Skip":     "vendor/golang.org/x/net/dns/dnsmessage",
		"main.run":                   "main",
		"go:itab.*os.File,io.Reader": "go:",
		"type:.eq.[2]interface {}":   "type:",
		"runtime.mallocgc":           "runtime",
	} {
		if got := SymbolPackage(name); got != want {
			t.Errorf("SymbolPackage(%q) = %q, want %q", name, got, want)
		}
	}
	for pkg, want := range map[string]string{
		"main": "carpd (main)",
		"github.com/carpd/carpd/internal/ctsync/kernel": "carpd/ctsync",
		"github.com/jsimonetti/rtnetlink/v2":            "github.com/jsimonetti/rtnetlink/v2",
		"golang.org/x/net/ipv4":                         "golang.org/x/net",
		"vendor/golang.org/x/net/dns/dnsmessage":        "std",
		"encoding/json":                                 "std",
	} {
		if got := Module(pkg, "github.com/carpd/carpd"); got != want {
			t.Errorf("Module(%q) = %q, want %q", pkg, got, want)
		}
	}
}

func TestSizes(t *testing.T) {
	// A host binary with its symbol table (go test may strip its own).
	exe := filepath.Join(t.TempDir(), "mkipk")
	cmd := exec.Command("go", "build", "-o", exe, "../../cmd/mkipk")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("go build: %v %s", err, out)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Sizes(b)
	if err != nil {
		t.Skip(err) // a platform whose binaries are not ELF
	}
	var found bool
	for _, p := range r.Packages {
		found = found || p.Package == "github.com/carpd/carpd/internal/ipk" && p.Text > 0
	}
	if !found || r.Sections[".text"] == 0 || r.Overhead <= 0 {
		t.Errorf("sizes of mkipk: %d packages, .text %d, internal/ipk found %v", len(r.Packages), r.Sections[".text"], found)
	}
	if _, err := Sizes(mustStrip(t, exe)); err == nil {
		t.Error("Sizes of a stripped binary: no error")
	}
}

// mustStrip returns exe rebuilt with -s -w.
func mustStrip(t *testing.T, exe string) []byte {
	out := exe + ".stripped"
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", out, "../../cmd/mkipk")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, b)
	}
	b, _ := os.ReadFile(out)
	return b
}

// elf32 is a bare ELF32 executable header (no sections, no segments).
func elf32(order binary.ByteOrder, data elf.Data, mach elf.Machine, flags uint32) []byte {
	var b bytes.Buffer
	h := elf.Header32{Type: uint16(elf.ET_EXEC), Machine: uint16(mach), Version: 1, Flags: flags, Ehsize: 52, Phentsize: 32, Shentsize: 40}
	copy(h.Ident[:], "\x7fELF\x01")
	h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(data), 1
	binary.Write(&b, order, h)
	return b.Bytes()
}

func TestCheckBinary(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	for _, c := range []struct {
		arch string
		bin  []byte
		ok   bool
	}{
		{"arm_cortex-a7_neon-vfpv4", elf32(le, elf.ELFDATA2LSB, elf.EM_ARM, 0x5000002), true},
		{"arm_cortex-a7_neon-vfpv4", elf32(le, elf.ELFDATA2LSB, elf.EM_ARM, 0x4000002), false}, // EABI 4
		{"arm_cortex-a7_neon-vfpv4", elf32(be, elf.ELFDATA2MSB, elf.EM_ARM, 0x5000002), false}, // armeb
		{"mips_24kc", elf32(le, elf.ELFDATA2LSB, elf.EM_MIPS, 0x50001004), false},              // mipsel binary
		{"mips_24kc", elf32(be, elf.ELFDATA2MSB, elf.EM_MIPS, 0x50001004), false},              // no .text, no abiflags
		{"x86_64", elf32(le, elf.ELFDATA2LSB, elf.EM_386, 0), false},
		{"i386_pentium4", elf32(le, elf.ELFDATA2LSB, elf.EM_386, 0), true},
		{"powerpc_8548", elf32(be, elf.ELFDATA2MSB, elf.EM_PPC, 0), false}, // Go cannot build it
		{"x86_64", []byte("#!/bin/sh\n"), false},
	} {
		if _, err := CheckBinary(c.arch, c.bin); (err == nil) != c.ok {
			t.Errorf("%s %x…: %v, want ok=%v", c.arch, c.bin[:min(20, len(c.bin))], err, c.ok)
		}
	}
}

// ipkBytes returns the .ipk file of p.
func ipkBytes(p *Package) ([]byte, error) {
	b, err := p.Build()
	if err != nil {
		return nil, err
	}
	return b.IPK, nil
}
