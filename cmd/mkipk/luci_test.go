package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/ipk"
)

// TestRunLuci builds luci-app-carpd with -luci: Architecture all, the
// views under /www, menu and ACL under /usr/share, all 0644, LuCI's
// postinst-pkg; an executable file in the tree and -arch are refused.
func TestRunLuci(t *testing.T) {
	out := t.TempDir()
	args := []string{"-luci", "../../package/luci-app-carpd", "-version", "0.1.0-r1", "-epoch", "1795565376", "-out", out}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "luci-app-carpd_0.1.0-r1_all.ipk"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ipk.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/www/luci-static/resources/view/carpd/status.js", "/www/luci-static/resources/view/carpd/config.js",
		"/usr/share/luci/menu.d/luci-app-carpd.json", "/usr/share/rpcd/acl.d/luci-app-carpd.json"} {
		if e, ok := c.DataFile(p); !ok || e.Mode != 0o644 || len(e.Data) == 0 {
			t.Errorf("%s: present %v, mode %o", p, ok, e.Mode)
		}
	}
	if c.Field("Architecture") != "all" || c.Field("Depends") != "libc, luci-base, carpd" || c.Field("Section") != "luci" {
		t.Errorf("fields %v", c.Fields)
	}
	if e, ok := c.ControlFile("postinst-pkg"); !ok || string(e.Data) != luciPostinst {
		t.Errorf("postinst-pkg %q", e.Data)
	}

	if err := run(append(args, "-arch", "mips_24kc"), io.Discard, io.Discard); err == nil {
		t.Error("-luci with -arch: no error")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "htdocs"), 0o755)
	os.WriteFile(filepath.Join(dir, "htdocs", "x.js"), []byte("x"), 0o755)
	if err := run([]string{"-luci", dir, "-version", "1", "-epoch", "1", "-out", out}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "executable") {
		t.Errorf("an executable view: %v", err)
	}
	if err := run([]string{"-luci", t.TempDir(), "-version", "1", "-epoch", "1", "-out", out}, io.Discard, io.Discard); err == nil {
		t.Error("an empty app directory: no error")
	}
}

// TestFeedMakefileLuci evaluates package/luci-app-carpd/Makefile with make
// and a stub luci.mk that prints the variables luci.mk turns into the
// package, and compares them with what mkipk -luci writes.
func TestFeedMakefileLuci(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	top, out := t.TempDir(), t.TempDir()
	stub := map[string]string{
		"rules.mk": "",
		"feeds/luci/luci.mk": `stub-vars:
	@echo 'PKG_VERSION=$(PKG_VERSION)' >> $(STUB_OUT)/vars
	@echo 'PKG_RELEASE=$(PKG_RELEASE)' >> $(STUB_OUT)/vars
	@echo 'PKG_LICENSE=$(PKG_LICENSE)' >> $(STUB_OUT)/vars
	@echo 'LUCI_DEPENDS=$(LUCI_DEPENDS)' >> $(STUB_OUT)/vars
	@echo 'LUCI_PKGARCH=$(LUCI_PKGARCH)' >> $(STUB_OUT)/vars
	@echo 'LUCI_TITLE=$(LUCI_TITLE)' >> $(STUB_OUT)/vars
	@echo 'LUCI_DESCRIPTION=$(strip $(LUCI_DESCRIPTION))' >> $(STUB_OUT)/vars
`,
	}
	for name, text := range stub {
		p := filepath.Join(top, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgDir, _ := filepath.Abs("../../package/luci-app-carpd")
	cmd := exec.Command("make", "--no-print-directory", "-C", pkgDir, "TOPDIR="+top, "STUB_OUT="+out, "stub-vars")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}
	text, _ := os.ReadFile(filepath.Join(out, "vars"))
	vars := map[string]string{}
	for _, l := range strings.Split(string(text), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	version, err := exec.Command("sh", "../../package/version.sh").Output()
	if err != nil {
		t.Fatalf("version.sh: %v", err)
	}
	var deps []string
	for _, d := range luciDepends[1:] { // the SDK adds libc itself
		deps = append(deps, "+"+d)
	}
	for k, v := range map[string]string{
		"PKG_VERSION": strings.TrimSpace(string(version)), "PKG_RELEASE": "1", "PKG_LICENSE": pkgLicense,
		"LUCI_DEPENDS": strings.Join(deps, " "), "LUCI_PKGARCH": "all", "LUCI_DESCRIPTION": luciDescribed,
	} {
		if vars[k] != v {
			t.Errorf("%s = %q, mkipk has %q", k, vars[k], v)
		}
	}
	if vars["LUCI_TITLE"] == "" {
		t.Error("LUCI_TITLE is empty")
	}
}
