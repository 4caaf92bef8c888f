package docscheck

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/openwrt"
)

// root is the repository, seen from this package's directory.
const root = "../.."

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseFile(t *testing.T, rel string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, rel), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// optionCases returns the string case labels of the switches on o.Name in
// the mapper method fn of file rel.
func optionCases(t *testing.T, rel, fn string) []string {
	t.Helper()
	var out []string
	for _, d := range parseFile(t, rel).Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn || fd.Recv == nil {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			sel, ok := sw.Tag.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Name" {
				return true
			}
			for _, st := range sw.Body.List {
				for _, e := range st.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatalf("%s: found no option switch in (*mapper).%s; has the mapper changed shape?", rel, fn)
	}
	return out
}

// tableNames returns the backquoted names in the first column of the
// tables under the heading "## <heading>" of a markdown text, up to the
// next "## " heading.
func tableNames(t *testing.T, md, heading string) map[string]bool {
	t.Helper()
	start := strings.Index(md, "\n## "+heading+"\n")
	if start < 0 {
		t.Fatalf("no section %q", heading)
	}
	body := md[start+len(heading)+5:]
	if end := strings.Index(body, "\n## "); end >= 0 {
		body = body[:end]
	}
	first := regexp.MustCompile("^\\| `([^`]+)`")
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if m := first.FindStringSubmatch(line); m != nil {
			names[m[1]] = true
		}
	}
	if len(names) == 0 {
		t.Fatalf("section %q has no table rows", heading)
	}
	return names
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// uciSections: section type, the mapper method and its file.
var uciSections = []struct{ typ, fn, file string }{
	{"carpd", "global", "internal/openwrt/config.go"},
	{"vhid", "vhid", "internal/openwrt/config.go"},
	{"sync", "sync", "internal/openwrt/sync.go"},
	{"track", "track", "internal/openwrt/track.go"},
	{"service", "service", "internal/openwrt/service.go"},
}

func TestUCIOptionsDocumented(t *testing.T) {
	md := read(t, "docs/uci.md")
	for _, s := range uciSections {
		documented := tableNames(t, md, "config "+s.typ)
		for _, opt := range optionCases(t, s.file, s.fn) {
			if !documented[opt] {
				t.Errorf("option %q of config %s is accepted by %s but not documented in docs/uci.md", opt, s.typ, s.file)
			}
		}
	}
}

// TestUCIDocumentedOptionsAccepted: every option in docs/uci.md is known to
// the parser (it does not warn "not known").
func TestUCIDocumentedOptionsAccepted(t *testing.T) {
	md := read(t, "docs/uci.md")
	for _, s := range uciSections {
		for _, opt := range sorted(tableNames(t, md, "config "+s.typ)) {
			file := "config " + s.typ + " 'x'\n\toption " + opt + " 'x'\n"
			_, warnings, _ := openwrt.ParseConfig("test", []byte(file))
			for _, w := range warnings {
				if strings.Contains(w, "not known") {
					t.Errorf("docs/uci.md documents %s.%s, but the parser does not know it: %s", s.typ, opt, w)
				}
			}
		}
	}
}

// ubusMethods returns the Name of every ubus.Method literal in internal/daemon/ubus.go.
func ubusMethods(t *testing.T) []string {
	t.Helper()
	var out []string
	ast.Inspect(parseFile(t, "internal/daemon/ubus.go"), func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if arr, ok := cl.Type.(*ast.ArrayType); ok {
			if sel, ok := arr.Elt.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Method" {
				return true
			}
			for _, e := range cl.Elts {
				for _, kv := range e.(*ast.CompositeLit).Elts {
					kv := kv.(*ast.KeyValueExpr)
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						if lit, ok := kv.Value.(*ast.BasicLit); ok {
							s, _ := strconv.Unquote(lit.Value)
							out = append(out, s)
						}
					}
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("internal/daemon/ubus.go: found no []ubus.Method literal")
	}
	return out
}

// controlMethods returns the case labels of the switch on req.Method in
// internal/daemon/control.go.
func controlMethods(t *testing.T) []string {
	t.Helper()
	var out []string
	ast.Inspect(parseFile(t, "internal/daemon/control.go"), func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok {
			return true
		}
		if sel, ok := sw.Tag.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Method" {
			return true
		}
		for _, st := range sw.Body.List {
			for _, e := range st.(*ast.CaseClause).List {
				if lit, ok := e.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("internal/daemon/control.go: found no switch on req.Method")
	}
	return out
}

func TestUbusMethodsDocumented(t *testing.T) {
	md := read(t, "docs/ubus.md")
	object := tableNames(t, md, "Object carpd")
	ubus := ubusMethods(t)
	for _, m := range ubus {
		if !object[m] {
			t.Errorf("ubus method %q is registered in internal/daemon/ubus.go but not documented in docs/ubus.md", m)
		}
	}
	known := map[string]bool{}
	for _, m := range ubus {
		known[m] = true
	}
	for _, m := range sorted(object) {
		if !known[m] {
			t.Errorf("docs/ubus.md documents ubus method %q, which internal/daemon/ubus.go does not register", m)
		}
	}
	section := md[strings.Index(md, "\n## Control socket\n"):]
	for _, m := range controlMethods(t) {
		if !strings.Contains(section, `{"method":"`+m+`"`) {
			t.Errorf("control-socket method %q (internal/daemon/control.go) has no example request in docs/ubus.md", m)
		}
	}
}

// jsonNames returns the JSON field names of t and of every struct it holds.
func jsonNames(t reflect.Type, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			jsonNames(f.Type, out)
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out[tag] = true
		jsonNames(f.Type, out)
	}
}

func TestUbusFieldsDocumented(t *testing.T) {
	md := read(t, "docs/ubus.md")
	for _, tt := range []struct {
		name    string
		v       any
		section string
	}{
		{"status", daemon.Status{}, "status reply"},
		{"carp.state", daemon.TransitionRecord{}, "Events"},
		{"carp.service", daemon.ServiceStatus{}, "Events"},
	} {
		body := md[strings.Index(md, "\n## "+tt.section+"\n"):]
		if end := strings.Index(body[4:], "\n## "); end >= 0 {
			body = body[:end+4]
		}
		names := map[string]bool{}
		jsonNames(reflect.TypeOf(tt.v), names)
		for _, n := range sorted(names) {
			// `name`, `name[]` (a list) or `parent.name`.
			if !strings.Contains(body, "`"+n+"`") && !strings.Contains(body, "`"+n+"[]`") &&
				!strings.Contains(body, "."+n+"`") {
				t.Errorf("%s field %q is not documented in docs/ubus.md, section %q", tt.name, n, tt.section)
			}
		}
	}
}

// layoutEntry is a line of a "Layout:" block that names a file or a
// directory: its first word ends in .go or /.
var layoutEntry = regexp.MustCompile(`^//\t([A-Za-z0-9_.*]+(\.go|/))\s`)

// TestPackageLayouts: the files a package comment lists under "Layout:"
// exist (a glob such as runner*.go must match at least one).
func TestPackageLayouts(t *testing.T) {
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "doc.go" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in := false
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "// Layout:"):
				in = true
			case in && (line == "//" || !strings.HasPrefix(line, "//")):
				// A blank comment line between the heading and the
				// block is allowed; the block ends at the next prose.
			case in && !strings.HasPrefix(line, "//\t"):
				in = false
			case in:
				m := layoutEntry.FindStringSubmatch(line + " ")
				if m == nil {
					continue
				}
				n++
				matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), m[1]))
				if len(matches) == 0 {
					t.Errorf("%s lists %s under Layout:, which does not exist", path, m[1])
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d layout entries; has the format changed?", n)
	}
}
