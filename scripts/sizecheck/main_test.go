package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSource: resolving net calls and slices sorts are found under
// any import name, in code only (not in comments or strings, nor for
// another package's Dial or Sort).
func TestCheckSource(t *testing.T) {
	src := `package x

import (
	"net"
	sl "slices"
	"sort"
)

// net.Dial and slices.Sort in a comment are fine.
var s = "net.Listen"

type d struct{}

func (d) Dial() {}

func f(v []uint16) {
	net.Dial("udp", "a:1")
	var _ net.Dialer
	_, _ = net.DialUnix("unix", nil, nil)
	sl.Sort(v)
	_ = sl.Contains(v, 1)
	sort.Slice(v, nil)
	d{}.Dial()
	_ = net.DefaultResolver
	sort.Strings(nil)
	sort.Ints(nil)
}
`
	name := filepath.Join(t.TempDir(), "x.go")
	if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := checkSource([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"x.go:17:2: net.Dial ", "x.go:18:8: net.Dialer ", "x.go:20:2: slices.Sort ", "x.go:24:6: net.DefaultResolver ", "x.go:25:2: sort.Strings "}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to name %q", i, got[i], want[i])
		}
	}
}

// TestCheckDeps: a forbidden package is reported with its importers.
func TestCheckDeps(t *testing.T) {
	pkgs := []listedPkg{
		{ImportPath: "os/exec"},
		{ImportPath: "net"},
		{ImportPath: "example/a", Imports: []string{"net", "os/exec"}},
		{ImportPath: "example/b", Imports: []string{"os/exec"}},
	}
	got := checkDeps(pkgs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "os/exec is linked (imported by example/a, example/b)") {
		t.Fatalf("got %q", got)
	}
	if got := checkDeps(pkgs[1:2]); len(got) != 0 {
		t.Fatalf("net alone: %q", got)
	}
}

// TestCheckFuncs: resolver and forbidden-package functions are reported,
// and sorts only beyond the budget.
func TestCheckFuncs(t *testing.T) {
	base := []string{
		"main.main", "net.(*UnixConn).Read", "vendor/golang.org/x/net/dns/dnsmessage.init",
		"slices.pdqsortCmpFunc[go.shape.*uint8]", "slices.pdqsortOrdered[go.shape.int]",
		"slices.pdqsortCmpFunc[go.shape.struct { a int }]", "slices.pdqsortCmpFunc[go.shape.struct { b int }]",
		"slices.stableCmpFunc[go.shape.struct { c int }]", "slices.insertionSortOrdered[go.shape.int]",
	}
	if got := checkFuncs(base); len(got) != 0 {
		t.Fatalf("today's functions: %q", got)
	}
	broken := append(base[:len(base):len(base)],
		"os/exec.(*Cmd).Start", "net.(*Resolver).lookupIP", "slices.pdqsortOrdered[go.shape.uint16]")
	got := checkFuncs(broken)
	if len(got) != 3 || !strings.Contains(got[0], "os/exec.(*Cmd).Start") ||
		!strings.Contains(got[1], "resolver") || !strings.Contains(got[2], "6 generic sort instantiations, budget 5") {
		t.Fatalf("got %q", got)
	}
	// log/slog and x/net/ipv4, ipv6 are out (internal/logx, the carp
	// sockets), and so are mdlayher/netlink, socket, packet and x/net/bpf
	// (internal/nl, internal/rawsock).
	base = append(base, "github.com/carpd/carpd/internal/nl.(*Conn).Execute", "github.com/carpd/carpd/internal/logx.(*Logger).Info")
	if got := checkFuncs(base); len(got) != 0 {
		t.Fatalf("today's functions: %q", got)
	}
	got = checkFuncs(append(base, "log/slog.(*Logger).Info", "golang.org/x/net/ipv4.(*RawConn).ReadFrom", "golang.org/x/net/ipv6.(*PacketConn).ReadFrom"))
	if len(got) != 3 || !strings.Contains(got[0], "log/slog costs 131,072 B") ||
		!strings.Contains(got[1], "x/net/ipv4 and ipv6 cost") || !strings.Contains(got[2], "ipv6.(*PacketConn)") {
		t.Fatalf("got %q", got)
	}
	got = checkFuncs(append(base, "github.com/mdlayher/netlink.(*Conn).Execute", "github.com/mdlayher/socket.(*Conn).Read", "golang.org/x/net/bpf.Assemble"))
	if len(got) != 2 || !strings.Contains(got[0], "2 functions github.com/mdlayher/*") ||
		!strings.Contains(got[0], "mdlayher/netlink, socket and packet with x/net/bpf cost 131,072 B") || !strings.Contains(got[1], "bpf.Assemble") {
		t.Fatalf("got %q", got)
	}
}

// TestCommas: sizes print as in package/SIZE.md.
func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 4849857: "4,849,857", -131072: "-131,072"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestEncodingJSON: encoding/json is forbidden, whoever imports it; its
// two sorts are not counted against the sort budget, its own rule reports
// them.
func TestEncodingJSON(t *testing.T) {
	pkgs := []listedPkg{{ImportPath: "encoding/json"}}
	pkgs = append(pkgs, listedPkg{ImportPath: "example/a", Imports: []string{"encoding/json"}})
	got := checkDeps(pkgs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "encoding/json is linked (imported by example/a): encoding/json costs 196,608 B") {
		t.Fatalf("got %q", got)
	}

	names := []string{"main.main", "encoding/json.Marshal", "slices.pdqsortCmpFunc[go.shape.struct { encoding/json.v reflect.Value }]",
		"slices.pdqsortCmpFunc[go.shape.*uint8]", "slices.pdqsortOrdered[go.shape.int]", "slices.stableCmpFunc[go.shape.struct { c int }]"}
	got = checkFuncs(names)
	if len(got) != 1 || !strings.Contains(got[0], "functions encoding/json.* (e.g. encoding/json.Marshal): encoding/json costs") {
		t.Fatalf("got %q", got)
	}
	if got := checkFuncs(append(names, "log/slog.(*Logger).Info")); len(got) != 2 {
		t.Fatalf("with log/slog linked too: %q", got)
	}
}

// TestNoinline: package/noinline.mk parses, and checkNoinline refuses a hot
// package, a package not in the binary, a carpd package in neither list and
// Makefiles that do not build with the list; the real files pass.
func TestNoinline(t *testing.T) {
	b, err := os.ReadFile("../../" + noinlineMk)
	if err != nil {
		t.Fatal(err)
	}
	cold, err := parseNoinline(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(cold) < 10 || cold[0] != "github.com/carpd/carpd" || cold[len(cold)-1] != "unicode" {
		t.Fatalf("parsed %q", cold)
	}
	makefile, _ := os.ReadFile("../../Makefile")
	feed, _ := os.ReadFile("../../package/carpd/Makefile")
	main := &struct{ Main bool }{true}
	var pkgs []listedPkg
	for _, c := range cold {
		pkgs = append(pkgs, listedPkg{ImportPath: c, Module: main})
	}
	pkgs = append(pkgs, listedPkg{ImportPath: "github.com/carpd/carpd/internal/carp", Module: main}, listedPkg{ImportPath: "time"})
	if got := checkNoinline(pkgs, cold, string(makefile), string(feed)); len(got) != 0 {
		t.Fatalf("the real lists: %q", got)
	}

	bad := append([]string{"time", "github.com/carpd/carpd/internal/ctsync/kernel", "example.org/gone"}, cold[1:]...)
	pkgs = append(pkgs, listedPkg{ImportPath: "github.com/carpd/carpd/internal/roles", Module: main},
		listedPkg{ImportPath: "github.com/carpd/carpd/internal/ctsync/kernel", Module: main})
	got := strings.Join(checkNoinline(pkgs, bad, "", ""), "\n")
	for _, want := range []string{
		"time is on a hot path", "internal/ctsync/kernel is on a hot path", "example.org/gone is not a package of the binary",
		"github.com/carpd/carpd is neither hot nor cold", "internal/roles is neither hot nor cold",
		`Makefile: no "include package/noinline.mk"`, "package/carpd/Makefile: no",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "internal/carp is neither") {
		t.Errorf("a hot carpd package reported:\n%s", got)
	}
}

// TestIsHot: patterns with /... match the package and those under it only.
func TestIsHot(t *testing.T) {
	for pkg, want := range map[string]bool{
		"runtime": true, "runtime/debug": false, "internal/poll": true, "internal/fmtsort": false,
		"net": true, "net/netip": true, "math/big": false, "math/bits": true, "fmt": false,
		"github.com/carpd/carpd/internal/ctsync": true, "github.com/carpd/carpd/internal/ctsync/wire": true,
		"github.com/carpd/carpd/internal/ctsyncx": false, "github.com/carpd/carpd/internal/daemon": false,
	} {
		if got := isHot(pkg); got != want {
			t.Errorf("isHot(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// TestCheckGCFlags: a binary built with the list's flags passes, one
// built without them fails.
func TestCheckGCFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two small programs")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(1) }\n"), 0o644)
	cold := []string{"x", "fmt"}
	for _, tt := range []struct {
		flags []string
		ok    bool
	}{
		{[]string{"-gcflags=x=-l", "-gcflags=fmt=-l"}, true},
		{nil, false},
		{[]string{"-gcflags=fmt=-l", "-gcflags=x=-l"}, false},
	} {
		out := filepath.Join(dir, "bin")
		cmd := exec.Command("go", append(append([]string{"build", "-o", out}, tt.flags...), ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		if got := checkGCFlags(out, cold); (got == "") != tt.ok {
			t.Errorf("%q: %q", tt.flags, got)
		}
	}
}
