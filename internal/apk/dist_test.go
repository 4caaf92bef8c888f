package apk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/ipk"
)

// The OpenWrt targets `make apk` packages (the Makefile's CROSS list).
var distArchs = []string{"mips_24kc", "mipsel_24kc", "arm_cortex-a7_neon-vfpv4", "aarch64_cortex-a53", "x86_64"}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// distPackage reads the one <name>-*.apk in $CARPD_DIST/apk/<arch>.
func distPackage(t *testing.T, dist, arch, name string) (string, []byte, *Contents) {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dist, "apk", arch, name+"-*.apk"))
	found = slices.DeleteFunc(found, func(f string) bool {
		return !ValidVersion(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), name+"-"), ".apk"))
	})
	if len(found) != 1 {
		t.Fatalf("want one %s-<version>.apk in %s/apk/%s, found %v", name, dist, arch, found)
	}
	raw, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := Read(raw)
	if err != nil {
		t.Fatalf("%s: %v", found[0], err)
	}
	return found[0], raw, c
}

// ipkFiles returns the regular files of the .ipk of the same package,
// version and arch, which `make ipk` built from the same inputs.
func ipkFiles(t *testing.T, dist, name, version, arch string) map[string]ipk.Entry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dist, name+"_"+version+"_"+arch+".ipk"))
	if err != nil {
		t.Fatalf("the .ipk of the same version: %v", err)
	}
	c, err := ipk.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]ipk.Entry{}
	for _, e := range c.Data {
		if !e.IsDir() {
			files[e.Path()] = e
		}
	}
	return files
}

// checkOpenWrtParts checks what package-pack.mk adds: the .list of every
// other file, the conffiles lists, and the three scripts.
func checkOpenWrtParts(t *testing.T, c *Contents, conffiles []string, postinstPkg string) {
	t.Helper()
	name := c.Info.Name
	meta := "/lib/apk/packages/" + name
	var paths []string
	for _, e := range c.Entries {
		if !e.Dir && !strings.HasPrefix(e.Path, "/lib/apk/packages/") {
			paths = append(paths, e.Path)
		}
	}
	slices.Sort(paths)
	if e, ok := c.File(meta + ".list"); !ok || string(e.Data) != strings.Join(paths, "\n")+"\n" || e.Mode != 0o644 {
		t.Errorf("%s.list (%v, mode %v):\n%s\nwant\n%s", meta, ok, e.Mode, e.Data, strings.Join(paths, "\n"))
	}
	e, ok := c.File(meta + ".conffiles")
	if len(conffiles) == 0 {
		if ok {
			t.Errorf("%s has conffiles %q", name, e.Data)
		}
	} else {
		if string(e.Data) != strings.Join(conffiles, "\n")+"\n" {
			t.Errorf("%s.conffiles %q, want %q", meta, e.Data, conffiles)
		}
		var static []string
		for _, cf := range conffiles {
			f, ok := c.File(cf)
			if !ok {
				t.Errorf("conffile %s is not in the package", cf)
				continue
			}
			if f.Mode&0o111 != 0 {
				t.Errorf("conffile %s is executable", cf)
			}
			sum := sha256.Sum256(f.Data)
			static = append(static, cf+" "+hex.EncodeToString(sum[:]))
		}
		if e, _ := c.File(meta + ".conffiles_static"); string(e.Data) != strings.Join(static, "\n")+"\n" {
			t.Errorf("%s.conffiles_static %q, want %q", meta, e.Data, static)
		}
	}
	if want := OpenWrtScripts(name, postinstPkg, ""); c.Scripts != want {
		t.Errorf("scripts:\n%+v\nwant\n%+v", c.Scripts, want)
	}
	for _, s := range []string{c.Scripts.PostInstall, c.Scripts.PostUpgrade, c.Scripts.PreDeinstall} {
		if !strings.HasPrefix(s, "#!/bin/sh\n") || !strings.Contains(s, `export pkgname="`+name+`"`) {
			t.Errorf("script without its shebang or pkgname:\n%s", s)
		}
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v %s\n%s", err, out, s)
		}
	}
	if !strings.Contains(c.Scripts.PostInstall, "\ndefault_postinst\n") || !strings.Contains(c.Scripts.PostUpgrade, "export PKG_UPGRADE=1\n") ||
		!strings.Contains(c.Scripts.PreDeinstall, "\ndefault_prerm\n") {
		t.Error("scripts do not call default_postinst / default_prerm")
	}
}

// rebuild runs mkipk -format apk again with the same inputs and reports
// whether the bytes are the same.
func rebuild(t *testing.T, args []string, file string, raw []byte) {
	t.Helper()
	mkipk := filepath.Join(t.TempDir(), "mkipk")
	if out, err := exec.Command("go", "build", "-o", mkipk, filepath.Join(repoRoot(t), "cmd/mkipk")).CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/mkipk: %v\n%s", err, out)
	}
	again := t.TempDir()
	out, err := exec.Command(mkipk, append(args, "-format", "apk", "-out", again)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mkipk: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(again, filepath.Base(filepath.Dir(file)), filepath.Base(file)))
	if err != nil || !bytes.Equal(b, raw) {
		t.Errorf("a second build of %s differs (%v)", file, err)
	}
}

// TestDistAPK checks every carpd .apk `make apk` put in $CARPD_DIST/apk:
// it decodes with Read (block order, offsets, hashes, DATA blocks), has the
// info OpenWrt's SDK gives (name, version, arch, depends libc, the @carpd-any
// provide, origin, license), the same files, contents and modes as the
// .ipk of the same version plus OpenWrt's /lib/apk/packages files, every
// directory 0755 and every owner root, every mtime SOURCE_DATE_EPOCH, the
// scripts, the right ELF binary, and the same bytes from a second build.
func TestDistAPK(t *testing.T) {
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		t.Skip("set CARPD_DIST (make apk-test does)")
	}
	root := repoRoot(t)
	all, _ := filepath.Glob(filepath.Join(dist, "apk", "*", "carpd-*.apk"))
	if len(all) != len(distArchs) {
		t.Errorf("%d carpd packages in %s/apk, want one for each of %d targets: %v", len(all), dist, len(distArchs), all)
	}
	for _, arch := range distArchs {
		t.Run(arch, func(t *testing.T) {
			file, raw, c := distPackage(t, dist, arch, "carpd")
			version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "carpd-"), ".apk")
			in := c.Info
			if in.Name != "carpd" || in.Version != version || in.Arch != arch || in.License != "BSD-2-Clause" ||
				in.Origin != "package/carpd" || in.URL == "" || in.Description == "" || strings.Contains(in.Description, "\n") ||
				!slices.Equal(in.Depends, []string{"libc"}) || !slices.Equal(in.Provides, []string{"carpd-any"}) {
				t.Errorf("info %+v", in)
			}
			if v := os.Getenv("CARPD_IPK_VERSION"); v != "" && version != v {
				t.Errorf("version %q, want %q (the .ipk's)", version, v)
			}
			if !c.Compressed || c.Signatures != 0 {
				t.Errorf("compressed %v, %d signatures; want deflate, unsigned", c.Compressed, c.Signatures)
			}
			epoch := os.Getenv("SOURCE_DATE_EPOCH")
			if epoch == "" {
				t.Fatal("set SOURCE_DATE_EPOCH (make apk-test does)")
			}
			var size uint64
			for _, e := range c.Entries {
				if e.User != "root" || e.Group != "root" || (e.Dir && e.Mode != 0o755) {
					t.Errorf("%s: %s:%s mode %v", e.Path, e.User, e.Group, e.Mode)
				}
				if !e.Dir && epoch != strconv.FormatUint(e.MTime, 10) {
					t.Errorf("%s: mtime %d, want %s", e.Path, e.MTime, epoch)
				}
				size += e.Size
			}
			if c.InstalledSize != size {
				t.Errorf("installed-size %d, files add up to %d", c.InstalledSize, size)
			}

			// The same files as the .ipk, plus OpenWrt's apk metadata.
			ipkf := ipkFiles(t, dist, "carpd", version, arch)
			for p, e := range ipkf {
				f, ok := c.File(p)
				if !ok || !bytes.Equal(f.Data, e.Data) || int64(f.Mode) != e.Mode {
					t.Errorf("%s: in the apk %v, mode %v; the ipk has mode %o, %d bytes", p, ok, f.Mode, e.Mode, len(e.Data))
				}
			}
			for _, e := range c.Entries {
				if _, ok := ipkf[e.Path]; !e.Dir && !ok && !strings.HasPrefix(e.Path, "/lib/apk/packages/carpd.") {
					t.Errorf("%s is in the apk, not in the ipk", e.Path)
				}
			}
			for p, src := range map[string]string{
				"/usr/sbin/carpd":   filepath.Join(dist, "carpd-"+arch),
				"/etc/config/carpd": filepath.Join(root, "package/carpd/files/carpd.config"),
			} {
				e, _ := c.File(p)
				if b, err := os.ReadFile(src); err != nil || !bytes.Equal(b, e.Data) {
					t.Errorf("%s differs from %s (%v)", p, src, err)
				}
			}
			if e, _ := c.File("/etc/config/carpd"); e.Mode != 0o600 {
				t.Errorf("/etc/config/carpd mode %v, want 0600 (it holds the CARP password)", e.Mode)
			}
			checkOpenWrtParts(t, c, []string{"/etc/config/carpd", "/etc/hotplug.d/carp/50-carpd-services"}, "")

			// The binary: ELF machine, byte order, static, soft float
			// (internal/ipk's check; TestDist runs the same bytes under qemu).
			bin, _ := c.File("/usr/sbin/carpd")
			if _, err := ipk.CheckBinary(arch, bin.Data); err != nil {
				t.Error(err)
			}

			rebuild(t, []string{"-bin", filepath.Join(dist, "carpd-"+arch), "-files", filepath.Join(root, "package/carpd/files"),
				"-arch", arch, "-version", version, "-epoch", epoch}, file, raw)
			t.Logf("%s: %d bytes; installed %d bytes", filepath.Base(file), len(raw), c.InstalledSize)
		})
	}
}

// TestDistAPKLuci checks $CARPD_DIST/apk/noarch/luci-app-carpd-<version>.apk:
// noarch, depends on libc, luci-base and carpd, the same files as the
// .ipk (all 0644, valid JSON), LuCI's cache-clearing postinst after
// default_postinst, no conffiles, the carpd version, reproducible.
func TestDistAPKLuci(t *testing.T) {
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		t.Skip("set CARPD_DIST (make apk-test does)")
	}
	file, raw, c := distPackage(t, dist, "noarch", "luci-app-carpd")
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "luci-app-carpd-"), ".apk")
	in := c.Info
	if in.Name != "luci-app-carpd" || in.Arch != "noarch" || in.Origin != "package/luci-app-carpd" ||
		!slices.Equal(in.Depends, []string{"carpd", "libc", "luci-base"}) || !slices.Equal(in.Provides, []string{"luci-app-carpd-any"}) {
		t.Errorf("info %+v", in)
	}
	if carpd, _ := filepath.Glob(filepath.Join(dist, "apk", "*", "carpd-"+version+".apk")); len(carpd) == 0 {
		t.Errorf("no carpd-%s.apk: the two must be released together", version)
	}
	ipkf := ipkFiles(t, dist, "luci-app-carpd", version, "all")
	n := 0
	for _, e := range c.Entries {
		if e.Dir || strings.HasPrefix(e.Path, "/lib/apk/packages/") {
			continue
		}
		n++
		if i, ok := ipkf[e.Path]; !ok || !bytes.Equal(i.Data, e.Data) || e.Mode != 0o644 {
			t.Errorf("%s: mode %v; in the ipk %v", e.Path, e.Mode, ok)
		}
		if strings.HasSuffix(e.Path, ".json") && !json.Valid(e.Data) {
			t.Errorf("%s is not valid JSON", e.Path)
		}
	}
	if n != len(ipkf) || n < 4 {
		t.Errorf("%d files, the ipk has %d", n, len(ipkf))
	}
	checkOpenWrtParts(t, c, nil, "#!/bin/sh\n[ -n \"${IPKG_INSTROOT}\" ] || {\n\trm -f /tmp/luci-indexcache*\n\trm -rf /tmp/luci-modulecache/\n\tkillall -HUP rpcd 2>/dev/null\n\texit 0\n}\n")
	rebuild(t, []string{"-luci", filepath.Join(repoRoot(t), "package/luci-app-carpd"), "-version", version,
		"-epoch", os.Getenv("SOURCE_DATE_EPOCH")}, file, raw)
	t.Logf("%s: %d bytes; installed %d bytes", filepath.Base(file), len(raw), c.InstalledSize)
}
