package ipk

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpkgLifecycle installs, upgrades, refuses to downgrade and removes
// our packages with OpenWrt's real opkg (opkg-lede's opkg-cl, built from
// source: it is in no Debian package) into an offline root, with
// IPKG_INSTROOT set as the OpenWrt build does, so the postinst/prerm stubs
// reach a recording /lib/functions.sh. Set CARPD_OPKG to the opkg-cl
// binary to run it.
func TestOpkgLifecycle(t *testing.T) {
	opkg := os.Getenv("CARPD_OPKG")
	if opkg == "" {
		t.Skip("set CARPD_OPKG to an opkg-lede opkg-cl binary")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr/lib/opkg/info", "lib", "var/lock", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// libc is "installed", as in every image.
	write(filepath.Join(root, "usr/lib/opkg/status"),
		"Package: libc\nVersion: 1.2.5-r4\nStatus: install user installed\nArchitecture: mips_24kc\nInstalled-Time: 1700000000\n\n")
	write(filepath.Join(root, "usr/lib/opkg/info/libc.list"), "")
	write(filepath.Join(root, "lib/functions.sh"),
		"default_postinst() { echo \"default_postinst ${1##*/} $2 PKG_UPGRADE=$PKG_UPGRADE\" >> \"$IPKG_INSTROOT/tmp/calls\"; }\n"+
			"default_prerm() { echo \"default_prerm ${1##*/} $2 PKG_UPGRADE=$PKG_UPGRADE\" >> \"$IPKG_INSTROOT/tmp/calls\"; }\n")
	conf := filepath.Join(dir, "opkg.conf")
	write(conf, "dest root /\nlists_dir ext "+filepath.Join(dir, "lists")+"\narch all 1\narch noarch 1\narch mips_24kc 10\n")

	pkg := func(version, config string) string {
		p := testPackage()
		p.Control.Version = version
		p.Conffiles = []string{"/etc/config/carpd"}
		p.Files[2].Data = []byte(config)
		b, err := ipkBytes(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, p.FileName())
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	old := pkg("0.0.0_git33~2a841be-r1", "config carpd 'global'\n")
	next := pkg("0.1.0-r1", "config carpd 'global'\n\toption preempt '0'\n")
	older := pkg("0.0.0_git32~1111111-r1", "x\n")

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(opkg, append([]string{"-f", conf, "-o", root, "--force-postinstall"}, args...)...)
		cmd.Env = append(os.Environ(), "IPKG_INSTROOT="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("opkg %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("install", old)
	for p, mode := range map[string]os.FileMode{"usr/sbin/carpd": 0o755, "etc/init.d/carpd": 0o755,
		"etc/config/carpd": 0o600, "etc/hotplug.d/carp/10-carpd-log": 0o644} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("/%s: %v %v, want mode %v", p, fi.Mode(), err, mode)
		}
	}
	cfg := filepath.Join(root, "etc/config/carpd")
	write(cfg, "config carpd 'global'\n\toption preempt '1' # local edit\n")
	run("install", next) // an upgrade: the edited conffile stays, the new one lands beside it
	if b, _ := os.ReadFile(cfg); !strings.Contains(string(b), "local edit") {
		t.Errorf("upgrade replaced the edited /etc/config/carpd: %q", b)
	}
	if _, err := os.Stat(cfg + "-opkg"); err != nil {
		t.Errorf("no /etc/config/carpd-opkg after the upgrade: %v", err)
	}
	if out := run("install", older); !strings.Contains(out, "Not downgrading") {
		t.Errorf("older version installed: %s", out)
	}
	if out := run("list-installed"); !strings.Contains(out, "carpd - 0.1.0-r1") {
		t.Errorf("installed: %s", out)
	}
	run("remove", "carpd")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/carpd")); !os.IsNotExist(err) {
		t.Errorf("binary left after remove: %v", err)
	}
	calls, _ := os.ReadFile(filepath.Join(root, "tmp/calls"))
	want := "default_postinst carpd.postinst configure PKG_UPGRADE=0\n" +
		"default_prerm carpd.prerm upgrade PKG_UPGRADE=1\n" +
		"default_postinst carpd.postinst configure PKG_UPGRADE=1\n" +
		"default_prerm carpd.prerm remove PKG_UPGRADE=0\n"
	if string(calls) != want {
		t.Errorf("maintainer script calls:\n%s\nwant:\n%s", calls, want)
	}
}
