package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/apk"
)

// TestRunAPK: -format apk writes <out>/<arch>/<name>-<version>.apk with the
// ipk's files and metadata in apk form, and replaces an older version.
func TestRunAPK(t *testing.T) {
	bin, out := fakeELF(t), t.TempDir()
	stale := filepath.Join(out, "x86_64", "carpd-0.0.1-r1.apk")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("old"), 0o644)
	args := []string{"-format", "apk", "-bin", bin, "-files", "../../package/carpd/files", "-arch", "x86_64",
		"-version", "0.1.0_git3~abc1234-r1", "-epoch", "1795565376", "-out", out}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "x86_64", "carpd-0.1.0_git3~abc1234-r1.apk"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := apk.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Info.Name != "carpd" || c.Info.Arch != "x86_64" || c.Info.Origin != pkgSource || c.Info.License != pkgLicense ||
		c.Info.Description != strings.Join(strings.Fields(pkgDescribed), " ") || !slices.Equal(c.Info.Depends, depends) {
		t.Errorf("info %+v", c.Info)
	}
	if e, _ := c.File("/usr/sbin/carpd"); !strings.HasSuffix(string(e.Data), "payload") || e.Mode != 0o755 || e.MTime != 1795565376 {
		t.Errorf("binary %+v", e)
	}
	if e, _ := c.File("/lib/apk/packages/carpd.conffiles"); string(e.Data) != strings.Join(conffiles, "\n")+"\n" {
		t.Errorf("conffiles %q", e.Data)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("the older package was not removed")
	}

	luci := []string{"-format", "apk", "-luci", "../../package/luci-app-carpd", "-version", "0.1.0-r1", "-epoch", "1", "-out", out}
	if err := run(luci, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(out, "noarch", "luci-app-carpd-0.1.0-r1.apk"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := apk.Read(raw); err != nil || c.Info.Arch != "noarch" || !strings.Contains(c.Scripts.PostInstall, "luci-indexcache") {
		t.Errorf("luci-app-carpd: %v %+v", err, c)
	}

	bad := append(slices.Clone(args[2:]), "-format", "deb")
	if err := run(bad, io.Discard, io.Discard); err == nil {
		t.Error("-format deb accepted")
	}
	tilde := []string{"-format", "apk", "-bin", bin, "-files", "../../package/carpd/files", "-arch", "x86_64",
		"-version", "0.1.0~git3-r1", "-epoch", "1", "-out", out}
	if err := run(tilde, io.Discard, io.Discard); err == nil {
		t.Error("a version apk cannot take (0.1.0~git3-r1) was accepted")
	}
}
