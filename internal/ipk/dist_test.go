package ipk

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The OpenWrt targets `make ipk` packages (the Makefile's CROSS list), with
// the ELF each needs and the qemu-user that runs it ("" = natively on amd64).
var distTargets = []struct {
	arch  string
	mach  elf.Machine
	order string
	qemu  string
}{
	{"mips_24kc", elf.EM_MIPS, "BigEndian", "qemu-mips-static"},
	{"mipsel_24kc", elf.EM_MIPS, "LittleEndian", "qemu-mipsel-static"},
	{"arm_cortex-a7_neon-vfpv4", elf.EM_ARM, "LittleEndian", "qemu-arm-static"},
	{"aarch64_cortex-a53", elf.EM_AARCH64, "LittleEndian", "qemu-aarch64-static"},
	{"x86_64", elf.EM_X86_64, "LittleEndian", "qemu-x86_64-static"},
}

// sdkFieldOrder is the order of package-pack.mk's control template.
var sdkFieldOrder = []string{"Package", "Version", "Depends", "Conflicts", "Provides", "Alternatives",
	"Source", "SourceName", "License", "LicenseFiles", "Section", "Require-User", "SourceDateEpoch",
	"URL", "ABIVersion", "CPE-ID", "Maintainer", "Architecture", "Installed-Size", "Description"}

// apkVersionRE: apk-tools' version grammar
// digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#} (OpenWrt 25.12+ uses apk).
var apkVersionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

var releaseRE = regexp.MustCompile(`-r[0-9]+$`)

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDist checks every package `make ipk` put in $CARPD_DIST: the outer
// format, control fields, files and modes, conffiles, scripts, that the
// binary inside is the right ELF (soft float on MIPS) and runs `carpd
// version` under qemu-user, and that building it again gives the same
// bytes. CARPD_IPK_VERSION and SOURCE_DATE_EPOCH, when set, must match.
func TestDist(t *testing.T) {
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		t.Skip("set CARPD_DIST (make ipk-test does)")
	}
	root := repoRoot(t)
	mkipk := filepath.Join(t.TempDir(), "mkipk")
	if out, err := exec.Command("go", "build", "-o", mkipk, filepath.Join(root, "cmd/mkipk")).CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/mkipk: %v\n%s", err, out)
	}
	filesDir := filepath.Join(root, "package/carpd/files")
	hooks, _ := filepath.Glob(filepath.Join(filesDir, "hotplug.d/*"))
	if len(hooks) == 0 {
		t.Fatal("no hotplug hooks in package/carpd/files/hotplug.d")
	}
	all, _ := filepath.Glob(filepath.Join(dist, "carpd_*.ipk"))
	if len(all) != len(distTargets) {
		t.Errorf("%d packages in %s, want one for each of %d targets: %v", len(all), dist, len(distTargets), all)
	}
	var versions []string
	for _, tt := range distTargets {
		t.Run(tt.arch, func(t *testing.T) {
			file, raw, c := openDist(t, dist, "carpd_*_"+tt.arch+".ipk")

			// Control: values.
			version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "carpd_"), "_"+tt.arch+".ipk")
			versions = append(versions, version)
			epoch, _ := strconv.ParseInt(c.Field("SourceDateEpoch"), 10, 64)
			for field, want := range map[string]string{
				"Package": "carpd", "Version": version, "Architecture": tt.arch, "Depends": "libc",
				"SourceName": "carpd", "License": "BSD-2-Clause", "LicenseFiles": "LICENSE", "Section": "net",
				"Installed-Size": strconv.Itoa(len(c.DataTar)),
			} {
				if got := c.Field(field); got != want {
					t.Errorf("%s: %q, want %q", field, got, want)
				}
			}
			if v := os.Getenv("CARPD_IPK_VERSION"); v != "" && version != v {
				t.Errorf("version %q, want %q", version, v)
			}
			if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" && c.Field("SourceDateEpoch") != e {
				t.Errorf("SourceDateEpoch %q, want %q", c.Field("SourceDateEpoch"), e)
			}
			if !apkVersionRE.MatchString(version) {
				t.Errorf("version %q is not valid for apk", version)
			}
			if c.Field("Description") == "" || epoch <= 0 {
				t.Errorf("description %q, epoch %d", c.Field("Description"), epoch)
			}

			// Data: every file, directory and mode; contents from the tree.
			type ent struct {
				name string
				mode int64
			}
			want := []ent{{"./", 0o755}, {"./etc/", 0o755}, {"./etc/config/", 0o755}, {"./etc/config/carpd", 0o600},
				{"./etc/hotplug.d/", 0o755}, {"./etc/hotplug.d/carp/", 0o755}}
			for _, h := range hooks {
				want = append(want, ent{"./etc/hotplug.d/carp/" + filepath.Base(h), 0o644})
			}
			want = append(want, ent{"./etc/init.d/", 0o755}, ent{"./etc/init.d/carpd", 0o755},
				ent{"./usr/", 0o755}, ent{"./usr/lib/", 0o755}, ent{"./usr/lib/lua/", 0o755},
				ent{"./usr/lib/lua/prometheus-collectors/", 0o755}, ent{"./usr/lib/lua/prometheus-collectors/carpd.lua", 0o644},
				ent{"./usr/sbin/", 0o755}, ent{"./usr/sbin/carpd", 0o755})
			var got []ent
			for _, e := range c.Data {
				got = append(got, ent{e.Name, e.Mode})
				if e.UID != 0 || e.GID != 0 || e.ModTime != epoch {
					t.Errorf("%s: uid %d gid %d mtime %d", e.Name, e.UID, e.GID, e.ModTime)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("data:\n got %v\nwant %v", got, want)
			}
			sources := map[string]string{
				"/usr/sbin/carpd":   filepath.Join(dist, "carpd-"+tt.arch),
				"/etc/init.d/carpd": filepath.Join(filesDir, "carpd.init"),
				"/etc/config/carpd": filepath.Join(filesDir, "carpd.config"),
				"/usr/lib/lua/prometheus-collectors/carpd.lua": filepath.Join(filesDir, "prometheus-collectors/carpd.lua"),
			}
			for _, h := range hooks {
				sources["/etc/hotplug.d/carp/"+filepath.Base(h)] = h
			}
			for p, src := range sources {
				e, _ := c.DataFile(p)
				if b, err := os.ReadFile(src); err != nil || !bytes.Equal(b, e.Data) {
					t.Errorf("%s differs from %s (%v)", p, src, err)
				}
			}

			// conffiles and the maintainer scripts.
			if e, _ := c.ControlFile("conffiles"); string(e.Data) != "/etc/config/carpd\n/etc/hotplug.d/carp/50-carpd-services\n" || e.Mode != 0o644 {
				t.Errorf("conffiles %q mode %o", e.Data, e.Mode)
			}
			for name, body := range map[string]string{"postinst": Postinst, "prerm": Prerm} {
				e, _ := c.ControlFile(name)
				if string(e.Data) != body || e.Mode != 0o755 {
					t.Errorf("%s: mode %o\n%s", name, e.Mode, e.Data)
				}
				if out, err := exec.Command("sh", "-n", "-c", string(e.Data)).CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n: %v %s", name, err, out)
				}
			}

			// The binary: ELF machine, byte order, static, soft float.
			bin, _ := c.DataFile("/usr/sbin/carpd")
			info, err := CheckBinary(tt.arch, bin.Data)
			if err != nil {
				t.Error(err)
			}
			if info != nil {
				if info.Machine != tt.mach || info.Order.String() != tt.order {
					t.Errorf("ELF %v %v, want %v %v", info.Machine, info.Order, tt.mach, tt.order)
				}
				t.Logf("ELF %v %v e_flags %#x static %v; MIPS fp_abi %d, FPU instructions %d",
					info.Machine, info.Order, info.Flags, info.Static, info.MIPSFPABI, info.FPUInstructions)
			}
			exe := filepath.Join(t.TempDir(), "carpd")
			if err := os.WriteFile(exe, bin.Data, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "version")
			if tt.mach != elf.EM_X86_64 || runtime.GOARCH != "amd64" {
				q, err := exec.LookPath(tt.qemu)
				if err != nil {
					if os.Getenv("CARPD_REQUIRE_QEMU") != "" {
						t.Fatalf("%s not installed (apt-get install qemu-user-static)", tt.qemu)
					}
					t.Skipf("%s not installed", tt.qemu)
				}
				cmd = exec.Command(q, exe, "version")
			}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "carpd ") {
				t.Errorf("carpd version: %v %q", err, out)
			}
			// The package version's commit hash is the binary's.
			if _, hash, ok := strings.Cut(releaseRE.ReplaceAllString(version, ""), "~"); ok && !strings.Contains(string(out), hash) {
				t.Errorf("carpd version says %q; the package is of commit %s", strings.TrimSpace(string(out)), hash)
			}

			// Reproducible: the same inputs give the same bytes.
			again := t.TempDir()
			mk := exec.Command(mkipk, "-bin", filepath.Join(dist, "carpd-"+tt.arch), "-files", filesDir,
				"-arch", tt.arch, "-version", version, "-epoch", c.Field("SourceDateEpoch"), "-out", again)
			if out, err := mk.CombinedOutput(); err != nil {
				t.Fatalf("mkipk: %v\n%s", err, out)
			}
			if b, err := os.ReadFile(filepath.Join(again, filepath.Base(file))); err != nil || !bytes.Equal(b, raw) {
				t.Errorf("a second build of %s differs (%v)", filepath.Base(file), err)
			}

			t.Logf("%s: %d bytes; binary %d bytes; installed %d bytes", filepath.Base(file), len(raw), len(bin.Data), len(c.DataTar))
			if tt.arch == "mips_24kc" && os.Getenv("CARPD_SIZE_BUDGET") != "" {
				// BENCHMARKS.md budgets: stripped binary ≤ 5 MB, .ipk ≤ 2 MB.
				if len(bin.Data) > 5_000_000 || len(raw) > 2_000_000 {
					t.Errorf("over budget: binary %d > 5000000 or ipk %d > 2000000", len(bin.Data), len(raw))
				}
			}
		})
	}
	if slices.Sort(versions); len(slices.Compact(versions)) > 1 {
		t.Errorf("packages of different versions: %v", versions)
	}
}

// TestMIPSFPUScan shows the soft-float check is not vacuous: a tiny
// program that multiplies floats, built with GOMIPS=hardfloat, has FPU
// instructions and fp_abi 1; built with softfloat, none and fp_abi 3.
// (qemu-mips emulates an FPU, so running a binary proves nothing here.)
func TestMIPSFPUScan(t *testing.T) {
	if os.Getenv("CARPD_DIST") == "" || testing.Short() {
		t.Skip("set CARPD_DIST (make ipk-test does); builds the MIPS runtime twice")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fl\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"os\"\n\nfunc main() { println(float64(len(os.Args)) * 1.5) }\n"), 0o644)
	for _, float := range []string{"hardfloat", "softfloat"} {
		cmd := exec.Command("go", "build", "-o", float, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=mips", "GOMIPS="+float, "CGO_ENABLED=0", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", float, err, out)
		}
		b, _ := os.ReadFile(filepath.Join(dir, float))
		info, err := CheckBinary("mips_24kc", b)
		if info == nil {
			t.Fatal(err)
		}
		t.Logf("%s: fp_abi %d, %d FPU instructions, check: %v", float, info.MIPSFPABI, info.FPUInstructions, err)
		if soft := float == "softfloat"; soft != (err == nil) || soft != (info.FPUInstructions == 0) ||
			soft != (info.MIPSFPABI == MIPSFPABISoft) {
			t.Errorf("%s: fp_abi %d, %d FPU instructions, check %v", float, info.MIPSFPABI, info.FPUInstructions, err)
		}
	}
}

// TestDistLuci checks dist/luci-app-carpd_<version>_all.ipk: the outer
// format, control fields (Architecture all, Depends on luci-base and
// carpd), every file of package/luci-app-carpd at its luci.mk place with
// mode 0644 and no binary among them, valid JSON for the menu and ACL,
// the maintainer scripts (postinst-pkg clears LuCI's caches), the same
// version as the carpd packages, and the same bytes from a second build.
func TestDistLuci(t *testing.T) {
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		t.Skip("set CARPD_DIST (make ipk-test does)")
	}
	root := repoRoot(t)
	appDir := filepath.Join(root, "package/luci-app-carpd")
	file, raw, c := openDist(t, dist, "luci-app-carpd_*_all.ipk")
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "luci-app-carpd_"), "_all.ipk")
	for field, want := range map[string]string{
		"Package": "luci-app-carpd", "Version": version, "Architecture": "all", "Depends": "libc, luci-base, carpd",
		"SourceName": "luci-app-carpd", "Source": "package/luci-app-carpd", "License": "BSD-2-Clause", "Section": "luci",
		"Installed-Size": strconv.Itoa(len(c.DataTar)),
	} {
		if got := c.Field(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if v := os.Getenv("CARPD_IPK_VERSION"); v != "" && version != v {
		t.Errorf("version %q, want %q", version, v)
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" && c.Field("SourceDateEpoch") != e {
		t.Errorf("SourceDateEpoch %q, want %q", c.Field("SourceDateEpoch"), e)
	}
	if carpd, _ := filepath.Glob(filepath.Join(dist, "carpd_"+version+"_*.ipk")); len(carpd) == 0 {
		t.Errorf("no carpd package of version %s next to it: the two must be released together", version)
	}

	// Data: the tree luci.mk installs (htdocs → /www, root → /), all 0644.
	want := map[string][]byte{}
	for _, m := range []struct{ src, dst string }{{"htdocs", "/www"}, {"root", ""}} {
		base := filepath.Join(appDir, m.src)
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(base, p)
				want[m.dst+"/"+filepath.ToSlash(rel)], _ = os.ReadFile(p)
			}
			return err
		})
	}
	for _, p := range []string{"/www/luci-static/resources/view/carpd/status.js", "/www/luci-static/resources/view/carpd/config.js",
		"/usr/share/luci/menu.d/luci-app-carpd.json", "/usr/share/rpcd/acl.d/luci-app-carpd.json"} {
		if want[p] == nil {
			t.Errorf("package/luci-app-carpd has no %s", p)
		}
	}
	epoch, _ := strconv.ParseInt(c.Field("SourceDateEpoch"), 10, 64)
	got := map[string][]byte{}
	for _, e := range c.Data {
		if e.UID != 0 || e.GID != 0 || e.ModTime != epoch {
			t.Errorf("%s: uid %d gid %d mtime %d", e.Name, e.UID, e.GID, e.ModTime)
		}
		if e.IsDir() {
			if e.Mode != 0o755 {
				t.Errorf("%s: directory mode %o", e.Name, e.Mode)
			}
			continue
		}
		if e.Mode != 0o644 {
			t.Errorf("%s: mode %o, want 0644", e.Name, e.Mode)
		}
		if bytes.HasPrefix(e.Data, []byte("\x7fELF")) {
			t.Errorf("%s is a binary in an Architecture all package", e.Name)
		}
		if strings.HasSuffix(e.Name, ".json") && !json.Valid(e.Data) {
			t.Errorf("%s is not valid JSON", e.Name)
		}
		got[e.Path()] = e.Data
	}
	if len(got) != len(want) {
		t.Errorf("%d files in the package, %d in package/luci-app-carpd", len(got), len(want))
	}
	for p, b := range want {
		if !bytes.Equal(got[p], b) {
			t.Errorf("%s: missing or different from package/luci-app-carpd", p)
		}
	}

	// Scripts: the SDK's stubs, postinst-pkg clearing LuCI's caches; no conffiles.
	if _, ok := c.ControlFile("conffiles"); ok {
		t.Error("luci-app-carpd has conffiles; it should have none")
	}
	for name, check := range map[string]func(string) bool{
		"postinst": func(s string) bool { return s == Postinst },
		"prerm":    func(s string) bool { return s == Prerm },
		"postinst-pkg": func(s string) bool {
			return strings.Contains(s, "rm -f /tmp/luci-indexcache") && strings.Contains(s, "rm -rf /tmp/luci-modulecache/") &&
				strings.Contains(s, "killall -HUP rpcd") && strings.Contains(s, `[ -n "${IPKG_INSTROOT}" ] ||`)
		},
	} {
		e, ok := c.ControlFile(name)
		if !ok || !check(string(e.Data)) || e.Mode != 0o755 {
			t.Errorf("%s: present %v, mode %o\n%s", name, ok, e.Mode, e.Data)
			continue
		}
		if out, err := exec.Command("sh", "-n", "-c", string(e.Data)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v %s", name, err, out)
		}
	}

	// Reproducible.
	mkipk := filepath.Join(t.TempDir(), "mkipk")
	if out, err := exec.Command("go", "build", "-o", mkipk, filepath.Join(root, "cmd/mkipk")).CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/mkipk: %v\n%s", err, out)
	}
	again := t.TempDir()
	if out, err := exec.Command(mkipk, "-luci", appDir, "-version", version, "-epoch", c.Field("SourceDateEpoch"), "-out", again).CombinedOutput(); err != nil {
		t.Fatalf("mkipk -luci: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(again, filepath.Base(file))); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("a second build of %s differs (%v)", filepath.Base(file), err)
	}
	t.Logf("%s: %d bytes; installed %d bytes; %d files", filepath.Base(file), len(raw), len(c.DataTar), len(got))
}

// openDist reads the one package in dist matching pattern (its path,
// bytes and contents) and checks what every ipk shares: the outer members
// in order, the outer gzip header as gzip -n writes it, the control fields
// in the SDK's order.
func openDist(t *testing.T, dist, pattern string) (file string, raw []byte, c *Contents) {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dist, pattern))
	if len(found) != 1 {
		t.Fatalf("want one %s in %s, found %v", pattern, dist, found)
	}
	file = found[0]
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err = Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	var outer []string
	for _, e := range c.Outer {
		outer = append(outer, e.Name)
	}
	if !slices.Equal(outer, []string{"./debian-binary", "./data.tar.gz", "./control.tar.gz"}) {
		t.Errorf("%s: outer members %q", pattern, outer)
	}
	if c.OuterGzip.OS != 3 || c.OuterGzip.Name != "" || !c.OuterGzip.ModTime.IsZero() {
		t.Errorf("%s: outer gzip header %+v", pattern, c.OuterGzip)
	}
	var names []string
	for _, f := range c.Fields {
		names = append(names, f.Name)
	}
	order := slices.DeleteFunc(slices.Clone(sdkFieldOrder), func(n string) bool { return !slices.Contains(names, n) })
	if !slices.Equal(names, order) {
		t.Errorf("%s: control fields %q, want the SDK order %q", pattern, names, order)
	}
	return file, raw, c
}
