// Command sizecheck keeps the carpd binary inside its size budget
// (docs/size-budget.md): the stripped mips_24kc binary at most 5,000,000
// bytes, and the rules that got it there.
//
//	sizecheck lint           (make lint) the binary's packages for linux/mips:
//	                         no forbidden package among its dependencies, and
//	                         in carpd's own files no resolving net call and no
//	                         slices.Sort family call; the cold packages of
//	                         package/noinline.mk (built without inlining)
//	                         all in the binary, none of them hot, every carpd
//	                         package in one list or the other, and both
//	                         Makefiles building with them
//	sizecheck binary FILE    (make size-check, after make cross) the stripped
//	                         mips binary: its size, no function of a
//	                         forbidden package or of Go's DNS resolver, no
//	                         more generic sort instantiations than budgeted,
//	                         and built with package/noinline.mk's -gcflags
//
// lint reads source (go list and go/parser, about a second); binary reads
// the function names that even a stripped Go binary keeps in .gopclntab.
package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Budget is the most the stripped mips_24kc binary may weigh.
const Budget = 5_000_000

// forbiddenPkgs may not be among the binary's dependencies, with what each
// cost when it was cut (docs/size-budget.md has the measurements).
var forbiddenPkgs = map[string]string{
	"os/exec":                            "os/exec costs 131,072 B (internal/openwrt/run.go's runCombined uses os.StartProcess)",
	"runtime/pprof":                      "runtime/pprof costs 196,608 B with compress/flate (only with -tags carpd_pprof, profile_pprof.go)",
	"compress/flate":                     "compress/flate came with runtime/pprof (196,608 B together)",
	"compress/gzip":                      "compress/gzip came with runtime/pprof (196,608 B together)",
	"github.com/jsimonetti/rtnetlink/v2": "jsimonetti/rtnetlink costs 65,536 B (vip speaks rtnetlink on mdlayher/netlink)",
	"net/http":                           "net/http would cost well over 1 MB",
	"log/slog":                           "log/slog costs 131,072 B (carpd logs through internal/logx, which writes the same lines; scripts/logconv converts code written against slog)",
	"golang.org/x/net/ipv4":              "x/net/ipv4 and ipv6 cost 65,536 B (carp's raw sockets are net.IPConn with setsockopt, internal/carp/iface_linux.go)",
	"golang.org/x/net/ipv6":              "x/net/ipv4 and ipv6 cost 65,536 B (carp's raw sockets are net.IPConn with setsockopt, internal/carp/iface_linux.go)",
	"github.com/ti-mo/conntrack":         "ti-mo/conntrack, ti-mo/netfilter and pkg/errors cost 65,536 B (internal/ctsync/kernel decodes ctnetlink messages itself, convert_linux.go)",
	"github.com/ti-mo/netfilter":         "ti-mo/conntrack, ti-mo/netfilter and pkg/errors cost 65,536 B (internal/ctsync/kernel decodes ctnetlink messages itself, convert_linux.go)",
	"flag":                               "flag costs 24,280 B of segments (carpd's subcommands parse their flags with flagSet, flags.go, which takes and prints the same)",
	"github.com/pkg/errors":              "ti-mo/conntrack, ti-mo/netfilter and pkg/errors cost 65,536 B (internal/ctsync/kernel decodes ctnetlink messages itself, convert_linux.go)",
	"github.com/mdlayher/netlink":        mdlayher,
	"github.com/mdlayher/socket":         mdlayher,
	"github.com/mdlayher/packet":         mdlayher,
	"golang.org/x/net/bpf":               mdlayher,
	"encoding/json":                      "encoding/json costs 196,608 B (carpd uses ubus/json, which writes the same bytes; go run ./scripts/jsonconv converts code written against encoding/json)",
}

// mdlayher is why mdlayher/netlink, socket and packet, and x/net/bpf that
// came with them, are forbidden.
const mdlayher = "mdlayher/netlink, socket and packet with x/net/bpf cost 131,072 B (internal/nl and internal/rawsock speak netlink and AF_PACKET on the runtime's netpoller)"

// resolving are the net functions and types that go through Go's resolver
// (a name or "host:port" string): linking any of them links the DNS client,
// 262,144 B. DialUnix, ListenUnix, ListenIP, ListenUDP, DialUDP with
// addresses already parsed do not.
var resolving = map[string]bool{
	"Dial": true, "DialTimeout": true, "Listen": true, "ListenPacket": true,
	"Dialer": true, "ListenConfig": true, "Resolver": true, "DefaultResolver": true,
	"ResolveIPAddr": true, "ResolveTCPAddr": true, "ResolveUDPAddr": true,
	"LookupAddr": true, "LookupCNAME": true, "LookupHost": true, "LookupIP": true,
	"LookupMX": true, "LookupNS": true, "LookupNetIP": true, "LookupPort": true,
	"LookupSRV": true, "LookupTXT": true,
}

// sorting are the slices functions that instantiate a pdqsort (or a stable
// merge sort) for every element type they are used with: 9-30 KB of the
// MIPS file each; sort.Slice has one implementation for all.
var sorting = map[string]bool{
	"Sort": true, "SortFunc": true, "SortStableFunc": true,
	"Sorted": true, "SortedFunc": true, "SortedStableFunc": true,
}

// typedSorts are the sort functions that call slices.Sort for their own
// element type since Go 1.22. sort.Ints is not among them: the standard
// library sorts ints anyway (one of the budgeted instantiations).
var typedSorts = map[string]bool{"Strings": true, "Float64s": true}

// forbiddenFuncs: a function name in the binary starting with one of these
// means the rule above was broken somewhere, in carpd or in a dependency.
var forbiddenFuncs = []struct{ prefix, why string }{
	{"os/exec.", forbiddenPkgs["os/exec"]},
	{"runtime/pprof.", forbiddenPkgs["runtime/pprof"]},
	{"compress/flate.", forbiddenPkgs["compress/flate"]},
	{"github.com/jsimonetti/rtnetlink", forbiddenPkgs["github.com/jsimonetti/rtnetlink/v2"]},
	{"net/http.", forbiddenPkgs["net/http"]},
	{"log/slog.", forbiddenPkgs["log/slog"]},
	{"golang.org/x/net/ipv4.", forbiddenPkgs["golang.org/x/net/ipv4"]},
	{"golang.org/x/net/ipv6.", forbiddenPkgs["golang.org/x/net/ipv6"]},
	{"github.com/ti-mo/", forbiddenPkgs["github.com/ti-mo/conntrack"]},
	{"github.com/pkg/errors.", forbiddenPkgs["github.com/pkg/errors"]},
	{"flag.", forbiddenPkgs["flag"]},
	{"encoding/json.", forbiddenPkgs["encoding/json"]},
	{"github.com/mdlayher/", mdlayher},
	{"golang.org/x/net/bpf.", mdlayher},
	{"net.(*Resolver).", "Go's DNS resolver is linked (262,144 B): something calls a resolving net function"},
	{"vendor/golang.org/x/net/dns/dnsmessage.(*Parser).", "Go's DNS client is linked (262,144 B): something calls a resolving net function"},
}

// maxSortInstances is how many generic sorts the binary may have. It has
// three today, all instantiated by the standard library: fmt's map
// printing (stable), one pointer shape and one int; encoding/json's two
// field and map key sorts are not counted (encoding/json is forbidden
// itself), which leaves room for two.
var maxSortInstances = 5

var sortInstance = regexp.MustCompile(`^slices\.(pdqsortOrdered|pdqsortCmpFunc|stableCmpFunc)\[`)

// noinlineMk lists the cold packages, built without inlining
// (-gcflags=<package>=-l) by the Makefile and package/carpd/Makefile.
const noinlineMk = "package/noinline.mk"

// hotPkgs are the packages of the hot paths (CARP adverts, the sync engine,
// conntrack events, vip's frames) and what they call per packet: they keep
// inlining, so none may be in package/noinline.mk. A pattern ending in /...
// also matches the packages under it.
var hotPkgs = []string{
	"runtime", "internal/...", "vendor/...", "unsafe", "sync/...", "time", "context", "errors",
	"net/...", "syscall", "os", "io", "bytes", "strings", "slices", "maps", "iter", "cmp",
	"unique", "weak", "math", "math/bits", "math/rand/...", "hash/...", "crypto/...", "encoding/binary", "encoding/hex",
	"unicode/utf8", "sort", "golang.org/x/crypto/...", "golang.org/x/sys/...", "golang.org/x/net/...",
	"golang.org/x/time/...", "golang.org/x/sync/...",
	"github.com/carpd/carpd/internal/carp/...", "github.com/carpd/carpd/internal/ctsync/...",
	"github.com/carpd/carpd/internal/vip/...",
}

// isHot reports whether pkg matches one of hotPkgs. internal/fmtsort is
// the one standard internal package that is cold (fmt's map printing).
func isHot(pkg string) bool {
	if pkg == "internal/fmtsort" {
		return false
	}
	for _, p := range hotPkgs {
		if pkg == p || strings.HasSuffix(p, "/...") && (pkg == strings.TrimSuffix(p, "/...") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "..."))) {
			return true
		}
	}
	return false
}

// parseNoinline returns the packages of CARPD_NOINLINE in noinline.mk's text.
func parseNoinline(text string) ([]string, error) {
	_, rest, ok := strings.Cut(text, "\nCARPD_NOINLINE := \\\n")
	if !ok {
		return nil, errors.New(noinlineMk + ": no \"CARPD_NOINLINE := \\\" line")
	}
	var pkgs []string
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "\\" {
			break
		}
		pkgs = append(pkgs, f[0])
		if len(f) == 1 {
			break // the last one has no "\\"
		}
	}
	return pkgs, nil
}

// checkNoinline checks the cold list against the binary's packages and
// that both Makefiles build with it: makefile is the Makefile's text, feed
// package/carpd/Makefile's.
func checkNoinline(pkgs []listedPkg, cold []string, makefile, feed string) []string {
	var problems []string
	inBinary := map[string]bool{}
	for _, p := range pkgs {
		inBinary[p.ImportPath] = true
	}
	listed := map[string]bool{}
	for _, c := range cold {
		switch {
		case listed[c]:
			problems = append(problems, fmt.Sprintf("%s: %s is listed twice", noinlineMk, c))
		case isHot(c):
			problems = append(problems, fmt.Sprintf("%s: %s is on a hot path and keeps inlining (hotPkgs in scripts/sizecheck/main.go); take it out", noinlineMk, c))
		case !inBinary[c]:
			problems = append(problems, fmt.Sprintf("%s: %s is not a package of the binary (one package a line, no patterns); take it out", noinlineMk, c))
		}
		listed[c] = true
	}
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Main && !listed[p.ImportPath] && !isHot(p.ImportPath) {
			problems = append(problems, fmt.Sprintf("%s is neither hot nor cold: add it to %s if no packet, flow or advert goes through it (docs/size-budget.md#no-inlining-in-cold-packages), else to hotPkgs in scripts/sizecheck/main.go", p.ImportPath, noinlineMk))
		}
	}
	for _, want := range []string{"include package/noinline.mk", "CARPD_BUILDFLAGS := $(GOFLAGS_BUILD) $(CARPD_NOINLINE_GCFLAGS)",
		"$(GO) build $(CARPD_BUILDFLAGS) -ldflags '$(LDFLAGS)' -o dist/carpd-$$name ."} {
		if !strings.Contains(makefile, want) {
			problems = append(problems, fmt.Sprintf("Makefile: no %q: make cross must build with %s's -gcflags", want, noinlineMk))
		}
	}
	for _, want := range []string{"include $(CURDIR)/../noinline.mk", "$(call GoPackage/Build/Compile,$(foreach p,$(CARPD_NOINLINE),-gcflags '$(p)=-l"} {
		if !strings.Contains(feed, want) {
			problems = append(problems, fmt.Sprintf("package/carpd/Makefile: no %q: the SDK build must use %s's -gcflags like make cross", want, noinlineMk))
		}
	}
	return problems
}

// readNoinline reads the cold list from the checkout (sizecheck runs in
// the module's root).
func readNoinline() ([]string, error) {
	b, err := os.ReadFile(noinlineMk)
	if err != nil {
		return nil, err
	}
	return parseNoinline(string(b))
}

func main() {
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "lint":
		err = lint(os.Stdout)
	case len(os.Args) == 3 && os.Args[1] == "binary":
		err = checkBinary(os.Args[2], os.Stdout)
	default:
		err = errors.New("usage: sizecheck lint | sizecheck binary dist/carpd-mips_24kc")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizecheck:", err)
		os.Exit(1)
	}
}

type listedPkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Module     *struct{ Main bool }
}

// lint checks the packages of the carpd binary as built for mips.
func lint(w io.Writer) error {
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json=ImportPath,Dir,GoFiles,Imports,Module", ".")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=mips", "GOMIPS=softfloat", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	var pkgs []listedPkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		pkgs = append(pkgs, p)
	}
	problems := checkDeps(pkgs)
	cold, err := readNoinline()
	if err != nil {
		return err
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		return err
	}
	feed, err := os.ReadFile("package/carpd/Makefile")
	if err != nil {
		return err
	}
	problems = append(problems, checkNoinline(pkgs, cold, string(makefile), string(feed))...)
	for _, p := range pkgs {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		var files []string
		for _, f := range p.GoFiles {
			files = append(files, filepath.Join(p.Dir, f))
		}
		found, err := checkSource(files)
		if err != nil {
			return err
		}
		problems = append(problems, found...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the carpd binary breaks its size rules (docs/size-budget.md):\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(w, "sizecheck: %d packages of the linux/mips binary keep the size rules\n", len(pkgs))
	return nil
}

// checkDeps reports each forbidden package among pkgs, with who imports it.
func checkDeps(pkgs []listedPkg) []string {
	var problems []string
	for _, p := range pkgs {
		why, bad := forbiddenPkgs[p.ImportPath]
		if !bad {
			continue
		}
		var by []string
		for _, q := range pkgs {
			for _, imp := range q.Imports {
				if imp == p.ImportPath {
					by = append(by, q.ImportPath)
				}
			}
		}
		problems = append(problems, fmt.Sprintf("%s is linked (imported by %s): %s", p.ImportPath, strings.Join(by, ", "), why))
	}
	return problems
}

// checkSource reports resolving net calls and slices sorts in files.
func checkSource(files []string) ([]string, error) {
	var problems []string
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		local := map[string]string{} // name in this file -> "net" or "slices"
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path != "net" && path != "slices" && path != "sort" {
				continue
			}
			n := path
			if imp.Name != nil {
				n = imp.Name.Name
			}
			local[n] = path
		}
		if len(local) == 0 {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			at := fset.Position(sel.Pos())
			switch local[id.Name] {
			case "net":
				if resolving[sel.Sel.Name] {
					problems = append(problems, fmt.Sprintf("%s: net.%s goes through Go's resolver and links its DNS client (262,144 B); use DialUnix, ListenUnix, ListenIP or a socket made by hand", at, sel.Sel.Name))
				}
			case "slices":
				if sorting[sel.Sel.Name] {
					problems = append(problems, fmt.Sprintf("%s: slices.%s instantiates a sort per element type (9-30 KB each); use sort.Slice", at, sel.Sel.Name))
				}
			case "sort":
				if typedSorts[sel.Sel.Name] {
					problems = append(problems, fmt.Sprintf("%s: sort.%s is a slices.Sort (since Go 1.22), a sort instantiation of its own (11 KB for []string); use sort.Slice", at, sel.Sel.Name))
				}
			}
			return true
		})
	}
	return problems, nil
}

// checkBinary checks the stripped binary at path.
func checkBinary(path string, w io.Writer) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	names, err := funcNames(path)
	if err != nil {
		return err
	}
	problems := checkFuncs(names)
	cold, err := readNoinline()
	if err != nil {
		return err
	}
	if p := checkGCFlags(path, cold); p != "" {
		problems = append(problems, p)
	}
	if fi.Size() > Budget {
		problems = append([]string{fmt.Sprintf("%s is %s bytes, over the %s-byte budget by %s (package/SIZE.md lists what to cut)",
			path, commas(fi.Size()), commas(Budget), commas(fi.Size()-Budget))}, problems...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s breaks the size budget (docs/size-budget.md):\n  %s", path, strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(w, "sizecheck: %s is %s bytes, %s under the %s-byte budget; no forbidden package or resolver; %d generic sorts (budget %d)\n",
		path, commas(fi.Size()), commas(Budget-fi.Size()), commas(Budget), len(sortInstances(names)), maxSortInstances)
	return nil
}

// checkGCFlags checks that the binary at path was built with the -gcflags
// of cold. Go records only the last -gcflags in the build info (debug/
// buildinfo, kept by a stripped binary too), which the Makefile's list
// ends with.
func checkGCFlags(path string, cold []string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("%s: no Go build info: %v", path, err)
	}
	got := ""
	for _, s := range bi.Settings {
		if s.Key == "-gcflags" {
			got = s.Value
		}
	}
	if len(cold) == 0 {
		return noinlineMk + " lists no package"
	}
	if want := cold[len(cold)-1] + "=-l"; got != want {
		return fmt.Sprintf("%s was built with -gcflags %q, not with %s's (the last one is %q): build it with make cross (docs/size-budget.md#no-inlining-in-cold-packages)", path, got, noinlineMk, want)
	}
	return ""
}

// checkFuncs reports forbidden functions and sort instantiations beyond
// the budgeted ones.
func checkFuncs(names []string) []string {
	var problems []string
	for _, f := range forbiddenFuncs {
		var hits []string
		for _, n := range names {
			if strings.HasPrefix(n, f.prefix) {
				hits = append(hits, n)
			}
		}
		if len(hits) > 0 {
			problems = append(problems, fmt.Sprintf("%d functions %s* (e.g. %s): %s", len(hits), f.prefix, hits[0], f.why))
		}
	}
	if s := sortInstances(names); len(s) > maxSortInstances {
		problems = append(problems, fmt.Sprintf("%d generic sort instantiations, budget %d (a slices.Sort/SortFunc/SortStableFunc on a new element type; use sort.Slice):\n    %s",
			len(s), maxSortInstances, strings.Join(s, "\n    ")))
	}
	return problems
}

// commas writes n as 4,849,857.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func sortInstances(names []string) []string {
	var out []string
	for _, n := range names {
		if sortInstance.MatchString(n) && !strings.Contains(n, "encoding/json.") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// funcNames returns the names of the functions in the Go ELF binary at
// path, from its pcln table (kept by -ldflags=-s, which drops .symtab).
func funcNames(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		return nil, fmt.Errorf("%s: no .gopclntab or .text: not a Go binary?", path)
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	names := make([]string, 0, len(tab.Funcs))
	for _, fn := range tab.Funcs {
		names = append(names, fn.Name)
	}
	return names, nil
}
