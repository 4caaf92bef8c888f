package main

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stubSDK is just enough of an OpenWrt buildroot for make to evaluate
// package/carpd/Makefile: rules.mk with the SDK's INSTALL_* commands,
// golang-package.mk's variables, and a BuildPackage that writes the
// package's description and conffiles to $(STUB_OUT), and has targets
// that write its variables and run Package/carpd/install and Build/Prepare.
var stubSDK = map[string]string{
	"rules.mk": `INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_BIN:=install -m0755
INSTALL_DIR:=install -d -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
`,
	"feeds/packages/lang/golang/golang-package.mk": `GO_PKG_BUILD_BIN_DIR:=$(STUB_BIN)
GO_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||loongarch64||mips||mips64||mips64el||mipsel||riscv64||x86_64)
define GoPackage/Build/Compile
	printf '%s\n' $(1) > $(STUB_OUT)/compile
endef
`,
	"include/package.mk": `PKG_BUILD_DIR:=$(STUB_OUT)/build
define BuildPackage
$$(eval $$(Package/$(1)))
$$(file >$(STUB_OUT)/description,$$(Package/$(1)/description))
$$(file >$(STUB_OUT)/conffiles,$$(Package/$(1)/conffiles))
stub-vars:
	@echo 'PKG_NAME=$$(PKG_NAME)' >> $(STUB_OUT)/vars
	@echo 'PKG_VERSION=$$(PKG_VERSION)' >> $(STUB_OUT)/vars
	@echo 'PKG_RELEASE=$$(PKG_RELEASE)' >> $(STUB_OUT)/vars
	@echo 'PKG_LICENSE=$$(PKG_LICENSE)' >> $(STUB_OUT)/vars
	@echo 'PKG_LICENSE_FILES=$$(PKG_LICENSE_FILES)' >> $(STUB_OUT)/vars
	@echo 'PKG_BUILD_DEPENDS=$$(PKG_BUILD_DEPENDS)' >> $(STUB_OUT)/vars
	@echo 'GO_PKG=$$(GO_PKG)' >> $(STUB_OUT)/vars
	@echo 'GO_PKG_BUILD_PKG=$$(GO_PKG_BUILD_PKG)' >> $(STUB_OUT)/vars
	@echo 'GO_PKG_LDFLAGS_X=$$(GO_PKG_LDFLAGS_X)' >> $(STUB_OUT)/vars
	@echo 'SECTION=$$(SECTION)' >> $(STUB_OUT)/vars
	@echo 'URL=$$(URL)' >> $(STUB_OUT)/vars
	@echo 'DEPENDS=$$(DEPENDS)' >> $(STUB_OUT)/vars
stub-install:
	$$(call Package/$(1)/install,$(STUB_OUT)/root)
stub-prepare:
	$$(call Build/Prepare)
stub-compile:
	$$(call Build/Compile)
endef
`,
}

// TestFeedMakefile evaluates package/carpd/Makefile with make and a stub
// SDK, runs its install and prepare steps, and checks it gives what
// mkipk packages: the same files, modes and contents, conffiles,
// description, license, section, URL and version.
func TestFeedMakefile(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	top, out, binDir := t.TempDir(), t.TempDir(), t.TempDir()
	for name, text := range stubSDK {
		p := filepath.Join(top, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(binDir, "carpd")
	os.WriteFile(bin, []byte("a carpd binary"), 0o755)
	pkgDir, _ := filepath.Abs("../../package/carpd")
	cmd := exec.Command("make", "--no-print-directory", "-C", pkgDir, "TOPDIR="+top, "STUB_OUT="+out, "STUB_BIN="+binDir,
		"stub-vars", "stub-install", "stub-prepare", "stub-compile")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=") // not the outer make's (make test)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}

	// The installed tree against mkipk's layout.
	files, err := layout(bin, filepath.Join(pkgDir, "files"))
	if err != nil {
		t.Fatal(err)
	}
	type file struct {
		mode fs.FileMode
		data string
	}
	want, got := map[string]file{}, map[string]file{}
	for _, f := range files {
		want[f.Path] = file{f.Mode, string(f.Data)}
	}
	root := filepath.Join(out, "root")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		if d.IsDir() {
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: directory mode %v", p, fi.Mode())
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		got["/"+filepath.ToSlash(strings.TrimPrefix(p, root+"/"))] = file{fi.Mode().Perm(), string(b)}
		return nil
	})
	if !maps.Equal(got, want) {
		for _, p := range slices.Sorted(maps.Keys(want)) {
			if got[p] != want[p] {
				t.Errorf("%s: feed Makefile installs mode %v, mkipk packages %v (or contents differ)", p, got[p].mode, want[p].mode)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s: installed by the feed Makefile, not packaged by mkipk", p)
			}
		}
	}

	// Description (as package-pack.mk's sed normalizes it) and conffiles.
	desc, _ := os.ReadFile(filepath.Join(out, "description"))
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(desc), "\n"), "\n") {
		lines = append(lines, strings.TrimLeft(l, " \t"))
	}
	if strings.Join(lines, "\n") != pkgDescribed {
		t.Errorf("description differs:\nMakefile:\n%s\nmkipk:\n%s", strings.Join(lines, "\n"), pkgDescribed)
	}
	conf, _ := os.ReadFile(filepath.Join(out, "conffiles"))
	if !slices.Equal(strings.Fields(string(conf)), conffiles) {
		t.Errorf("conffiles: Makefile %q, mkipk %q", strings.Fields(string(conf)), conffiles)
	}

	// Variables.
	varsText, _ := os.ReadFile(filepath.Join(out, "vars"))
	vars := map[string]string{}
	for _, l := range strings.Split(string(varsText), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	version, err := exec.Command("sh", "../../package/version.sh").Output()
	if err != nil {
		t.Fatalf("version.sh: %v", err)
	}
	for k, v := range map[string]string{
		"PKG_NAME": pkgName, "PKG_LICENSE": pkgLicense, "PKG_LICENSE_FILES": pkgLicFiles, "SECTION": pkgSection,
		"URL": pkgURL, "GO_PKG": "github.com/carpd/carpd", "GO_PKG_BUILD_PKG": "github.com/carpd/carpd",
		"PKG_BUILD_DEPENDS": "golang/host", "PKG_VERSION": strings.TrimSpace(string(version)), "PKG_RELEASE": "1",
		"GO_PKG_LDFLAGS_X": "main.version=" + strings.TrimSpace(string(version)) + "-r1",
	} {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	if !strings.HasPrefix(vars["DEPENDS"], "@(") {
		t.Errorf("DEPENDS = %q, want $(GO_ARCH_DEPENDS)", vars["DEPENDS"])
	}

	// Build/Compile passes make cross's -gcflags (package/noinline.mk), one
	// package at a time, after golang-package.mk's own.
	cmd = exec.Command("make", "-s", "--no-print-directory", "-f", "../../package/noinline.mk", "-f", "-", "print")
	cmd.Stdin = strings.NewReader("print:\n\t@printf '%s\\n' $(CARPD_NOINLINE_GCFLAGS)\n")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=")
	crossFlags, err := cmd.Output()
	if err != nil {
		t.Fatalf("make print: %v", err)
	}
	var wantCompile []string
	for _, f := range strings.Fields(string(crossFlags)) {
		wantCompile = append(wantCompile, "-gcflags", strings.TrimPrefix(f, "-gcflags=")+" ")
	}
	compile, _ := os.ReadFile(filepath.Join(out, "compile"))
	if got := strings.Split(strings.TrimSuffix(string(compile), "\n"), "\n"); len(wantCompile) < 20 || !slices.Equal(got, wantCompile) {
		t.Errorf("Build/Compile passes %q, want %q", got, wantCompile)
	}

	// Build/Prepare copied the Go source, without .git and build output.
	build := filepath.Join(out, "build")
	for _, p := range []string{"go.mod", "go.sum", "main.go", "internal/ipk/ipk.go"} {
		if _, err := os.Stat(filepath.Join(build, p)); err != nil {
			t.Errorf("Build/Prepare: %v", err)
		}
	}
	for _, p := range []string{".git", "dist", "bin"} {
		if _, err := os.Stat(filepath.Join(build, p)); err == nil {
			t.Errorf("Build/Prepare copied %s", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(build, "go.mod")); !bytes.HasPrefix(b, []byte("module github.com/carpd/carpd")) {
		t.Errorf("go.mod: %.40q", b)
	}
}
