package apk

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stubFunctions stands in for OpenWrt's /lib/functions.sh in the scratch
// root: it logs what the package scripts call and, like the real
// default_postinst/default_prerm, finds the init scripts in
// /lib/apk/packages/<pkgname>.list.
const stubFunctions = `add_group_and_user() { echo "add_group_and_user $pkgname" >> /tmp/log; }
default_postinst() {
	echo "default_postinst $pkgname upgrade=${PKG_UPGRADE:-0}" >> /tmp/log
	for i in $(grep -s "^/etc/init.d/" "$root/lib/apk/packages/$pkgname.list"); do echo "start $i" >> /tmp/log; done
}
default_prerm() {
	echo "default_prerm $pkgname" >> /tmp/log
	for i in $(grep -s "^/etc/init.d/" "$root/lib/apk/packages/$pkgname.list"); do echo "stop $i" >> /tmp/log; done
}
`

// TestAPKTool installs the packages with a real apk-tools v3
// ($CARPD_APK_TOOL, e.g. a build of apk-tools 3.0.x) into a scratch root:
// apk verify (unsigned, so --allow-untrusted), apk mkndx, add carpd and
// luci-app-carpd (with stub libc and luci-base packages), check the files,
// modes and that post-install ran default_postinst for the init script;
// then upgrade to a package whose default config changed after the user
// edited /etc/config/carpd (kept, the new one lands as .apk-new;
// post-upgrade runs with PKG_UPGRADE=1); then del (pre-deinstall runs
// default_prerm). Scripts run chrooted, so this needs root and a static
// busybox ($CARPD_BUSYBOX, default /bin/busybox) as the root's /bin/sh.
func TestAPKTool(t *testing.T) {
	tool := os.Getenv("CARPD_APK_TOOL")
	if tool == "" {
		t.Skip("set CARPD_APK_TOOL to an apk-tools v3 binary")
	}
	if os.Getuid() != 0 {
		t.Skip("apk runs package scripts chrooted: needs root")
	}
	busybox := os.Getenv("CARPD_BUSYBOX")
	if busybox == "" {
		busybox = "/bin/busybox"
	}
	if f, err := elf.Open(busybox); err != nil {
		t.Skipf("no busybox for the scratch root's /bin/sh: %v", err)
	} else {
		static := true
		for _, p := range f.Progs {
			static = static && p.Type != elf.PT_INTERP
		}
		f.Close()
		if !static {
			t.Skipf("%s is dynamically linked; it must run chrooted (apt-get install busybox-static)", busybox)
		}
	}
	if out, err := exec.Command(tool, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "apk-tools 3.") {
		t.Fatalf("%s --version: %v %q; want apk-tools 3.x", tool, err, out)
	} else {
		t.Logf("%s", bytes.TrimSpace(out))
	}

	dir := t.TempDir()
	write := func(name string, p *Package) string {
		b, err := p.Build()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b.APK, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	const arch = "mips_24kc"
	stub := func(name, arch string) string {
		return write(name+".apk", &Package{Info: Info{Name: name, Version: "1.0-r1", Arch: arch, Description: "stub"}, SourceDateEpoch: 1})
	}
	libc, luciBase := stub("libc", arch), stub("luci-base", "noarch")
	carpd := func(version, config string) string {
		bin := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 1000)
		o := &OpenWrt{
			Info: Info{Name: "carpd", Version: version, Description: "CARP", Arch: arch, License: "BSD-2-Clause",
				Depends: []string{"libc"}, Provides: []string{"carpd-any"}},
			Files: []File{
				{Path: "/usr/sbin/carpd", Mode: 0o755, Data: bin},
				{Path: "/etc/init.d/carpd", Mode: 0o755, Data: []byte("#!/bin/sh /etc/rc.common\nSTART=60\n")},
				{Path: "/etc/config/carpd", Mode: 0o600, Data: []byte(config)},
			},
			Conffiles:       []string{"/etc/config/carpd"},
			SourceDateEpoch: 1700000000,
		}
		p, err := o.Package()
		if err != nil {
			t.Fatal(err)
		}
		return write("carpd-"+version+".apk", p)
	}
	v1 := carpd("0.1.0-r1", "config carpd 'global'\n")
	v2 := carpd("0.1.0-r2", "config carpd 'global'\n\toption new '1'\n")
	luciPkg, err := (&OpenWrt{
		Info:            Info{Name: "luci-app-carpd", Version: "0.1.0-r1", Arch: "noarch", Depends: []string{"libc", "luci-base", "carpd"}},
		Files:           []File{{Path: "/usr/share/luci/menu.d/luci-app-carpd.json", Mode: 0o644, Data: []byte("{}\n")}},
		PostinstPkg:     "#!/bin/sh\necho luci-postinst >> /tmp/log\n",
		SourceDateEpoch: 1700000000,
	}).Package()
	if err != nil {
		t.Fatal(err)
	}
	luci := write("luci-app-carpd.apk", luciPkg)

	apk := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("apk %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Log(apk("verify", "--allow-untrusted", v1, v2, luci))
	if out, err := exec.Command(tool, "verify", v1).CombinedOutput(); err == nil {
		t.Errorf("apk verify without --allow-untrusted accepted an unsigned package: %s", out)
	}
	apk("mkndx", "--allow-untrusted", "--output", filepath.Join(dir, "packages.adb"), v1, libc)
	if dump := apk("adbdump", v1); !strings.Contains(dump, "name: carpd") || !strings.Contains(dump, "post-install: |") ||
		!strings.Contains(dump, "mode: 0600") {
		t.Errorf("apk adbdump:\n%s", dump)
	}

	root := scratchRoot(t, filepath.Join(dir, "root"), busybox)
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "tmp/log"))
		os.Remove(filepath.Join(root, "tmp/log"))
		return string(b)
	}
	base := []string{"--root", root, "--allow-untrusted", "--no-network", "--no-cache"}

	// Install.
	t.Log(apk(append(base, "--initdb", "--arch", arch, "add", libc, luciBase, v1, luci)...))
	for p, mode := range map[string]os.FileMode{"usr/sbin/carpd": 0o755, "etc/init.d/carpd": 0o755, "etc/config/carpd": 0o600,
		"lib/apk/packages/carpd.list": 0o644, "lib/apk/packages/carpd.conffiles_static": 0o644,
		"usr/share/luci/menu.d/luci-app-carpd.json": 0o644} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("/%s: %v, mode %v, want %v", p, err, fi.Mode().Perm(), mode)
		}
	}
	want := "add_group_and_user carpd\ndefault_postinst carpd upgrade=0\nstart /etc/init.d/carpd\n" +
		"add_group_and_user luci-app-carpd\ndefault_postinst luci-app-carpd upgrade=0\nluci-postinst\n"
	if got := log(); got != want {
		t.Errorf("install ran:\n%s\nwant\n%s", got, want)
	}

	// Upgrade after the user changed the config: kept, the new default
	// beside it.
	conf := filepath.Join(root, "etc/config/carpd")
	edited := "config carpd 'global'\n\toption password 'secret'\n"
	os.WriteFile(conf, []byte(edited), 0o600)
	t.Log(apk(append(base, "add", libc, luciBase, v2, luci)...))
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Errorf("upgrade replaced the edited /etc/config/carpd: %q", b)
	}
	if b, err := os.ReadFile(conf + ".apk-new"); err != nil || !strings.Contains(string(b), "option new") {
		t.Errorf("no new default as /etc/config/carpd.apk-new: %v %q", err, b)
	}
	if got, want := log(), "add_group_and_user carpd\ndefault_postinst carpd upgrade=1\nstart /etc/init.d/carpd\n"; got != want {
		t.Errorf("upgrade ran:\n%s\nwant\n%s", got, want)
	}
	if info := apk(append(base, "info", "carpd")...); !strings.Contains(info, "carpd-0.1.0-r2") {
		t.Errorf("apk info after the upgrade:\n%s", info)
	}

	// Remove.
	t.Log(apk(append(base, "del", "luci-app-carpd", "carpd")...))
	if got := log(); !strings.Contains(got, "default_prerm carpd\nstop /etc/init.d/carpd\n") || !strings.Contains(got, "default_prerm luci-app-carpd\n") {
		t.Errorf("del ran:\n%s", got)
	}
	for _, p := range []string{"usr/sbin/carpd", "etc/init.d/carpd", "lib/apk/packages/carpd.list"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s is still there after apk del", p)
		}
	}
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Errorf("apk del removed the edited /etc/config/carpd")
	}

	// The packages `make apk` built, when there are some.
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		return
	}
	all, _ := filepath.Glob(filepath.Join(dist, "apk", "*", "*.apk"))
	if len(all) == 0 {
		t.Fatalf("no packages in %s/apk", dist)
	}
	t.Log(apk(append([]string{"verify", "--allow-untrusted"}, all...)...))
	if out := apk(append([]string{"mkndx", "--allow-untrusted", "--output", filepath.Join(dir, "dist.adb")}, all...)...); !strings.Contains(out, "Index has") {
		t.Errorf("apk mkndx: %s", out)
	}
	for _, a := range distArchs {
		found, _ := filepath.Glob(filepath.Join(dist, "apk", a, "carpd-*.apk"))
		lucis, _ := filepath.Glob(filepath.Join(dist, "apk", "noarch", "luci-app-carpd-*.apk"))
		if len(found) != 1 || len(lucis) != 1 {
			t.Fatalf("%s: carpd packages %v, luci %v", a, found, lucis)
		}
		r := scratchRoot(t, filepath.Join(dir, "dist-"+a), busybox)
		t.Log(apk("--root", r, "--allow-untrusted", "--no-network", "--no-cache", "--initdb", "--arch", a,
			"add", stub("libc", a), luciBase, found[0], lucis[0]))
		bin, _ := os.ReadFile(filepath.Join(dist, "carpd-"+a))
		if got, err := os.ReadFile(filepath.Join(r, "usr/sbin/carpd")); err != nil || !bytes.Equal(got, bin) || len(bin) == 0 {
			t.Errorf("%s: installed /usr/sbin/carpd differs from dist/carpd-%s (%v)", a, a, err)
		}
		if fi, err := os.Stat(filepath.Join(r, "etc/config/carpd")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: /etc/config/carpd: %v", a, err)
		}
		b, _ := os.ReadFile(filepath.Join(r, "tmp/log"))
		if want := "add_group_and_user carpd\ndefault_postinst carpd upgrade=0\nstart /etc/init.d/carpd\n" +
			"add_group_and_user luci-app-carpd\ndefault_postinst luci-app-carpd upgrade=0\n"; string(b) != want {
			t.Errorf("%s: install ran:\n%s\nwant\n%s", a, b, want)
		}
	}
}

// scratchRoot makes an empty root with a static busybox as /bin/sh and
// grep, and the logging stand-in for /lib/functions.sh.
func scratchRoot(t *testing.T, root, busybox string) string {
	t.Helper()
	for _, d := range []string{"bin", "lib", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "grep", "rm", "killall"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(stubFunctions), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}
