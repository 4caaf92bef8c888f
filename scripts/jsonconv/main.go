// Command jsonconv moves carpd's daemon code from encoding/json to
// github.com/carpd/carpd/ubus/json, which has encoding/json's API, package
// name, output and errors in the part carpd uses, at a fraction of its
// size (docs/size-budget.md: encoding/json costs 131,072 B of the mips
// binary).
//
//	go run ./scripts/jsonconv [DIR]
//
// It changes files under DIR (default .) that import "encoding/json"
// under its own name, when the file is
//
//   - in the directory of a package the carpd binary links (as
//     `go list -deps` sees it for linux/mips), tests included, so that a
//     package and its tests share one RawMessage type; or
//   - anywhere else, a file that imports a ubus package and names
//     json.RawMessage, the type of the ubus API's arguments and results.
//
// In those it replaces the import by "github.com/carpd/carpd/ubus/json",
// placed among the file's other github.com/carpd/carpd imports (or in a
// group of its own after the others), and gofmts the file. No identifier
// changes: the package is called json too. It leaves alone ubus/json
// itself, scripts, testdata and hidden directories, and files that import
// encoding/json under another name (differential tests import it as
// stdjson on purpose). Tools and tests that are not part of the binary
// (bench, internal/lab, internal/ipk, e2e helpers) keep encoding/json.
// Running it again changes nothing, so the lead can rerun it after merging
// code written against encoding/json; `go run ./scripts/sizecheck lint`
// fails while the binary links encoding/json.
//
// Merging a branch that still uses encoding/json with one that has the
// conversion: a file that conflicts only because of the import line is
// resolved by taking the encoding/json side whole and rerunning this
// command.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	module  = "github.com/carpd/carpd"
	newPath = module + "/ubus/json"
)

// skip are the directories, relative to the root, left alone.
var skip = map[string]bool{"ubus/json": true, "scripts": true}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	binDirs, err := binaryDirs(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jsonconv:", err)
		os.Exit(1)
	}
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (skip[rel] || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return err
		}
		if !binDirs[abs] && !(bytes.Contains(src, []byte("json.RawMessage")) && bytes.Contains(src, []byte(`"`+module+`/ubus`))) {
			return nil
		}
		out, changed, err := convert(path, src)
		if err != nil || !changed {
			return err
		}
		n++
		fmt.Println(rel)
		return os.WriteFile(path, out, d.Type().Perm()|0o644)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "jsonconv:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "jsonconv: %d files moved from encoding/json to ubus/json\n", n)
}

// binaryDirs returns the directories of carpd's packages that the
// linux/mips binary links.
func binaryDirs(root string) (map[string]bool, error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "`+module+`"}}{{.Dir}}{{end}}{{end}}`, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=mips", "GOMIPS=softfloat", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	dirs := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		dirs[d] = true
	}
	return dirs, nil
}

// convert returns src moved to ubus/json, and whether it changed.
func convert(name string, src []byte) ([]byte, bool, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, false, err
	}
	var jsonLine int  // line of the "encoding/json" import
	var carpdLine int // line of the last github.com/carpd/carpd import
	var otherLine int // line of the last import outside the standard library
	var lastLine int  // line of the last import
	var single bool   // import "encoding/json" on its own
	has := false
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		line := fset.Position(imp.Pos()).Line
		switch {
		case path == "encoding/json":
			if imp.Name != nil && imp.Name.Name != "json" {
				return src, false, nil // stdjson: on purpose
			}
			jsonLine = line
			for _, d := range f.Decls {
				if fset.Position(d.Pos()).Line == line {
					single = true
				}
			}
			continue
		case path == newPath:
			has = true
		case strings.HasPrefix(path, module+"/"):
			carpdLine = line
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			otherLine = line
		}
		lastLine = line
	}
	if jsonLine == 0 {
		return src, false, nil
	}
	spec := "\t" + strconv.Quote(newPath) + "\n"
	lines := strings.SplitAfter(string(src), "\n")
	old := lines[jsonLine-1]
	switch {
	case single:
		lines[jsonLine-1] = "import " + strconv.Quote(newPath) + "\n"
	case has:
		lines[jsonLine-1] = ""
	case carpdLine != 0:
		lines[carpdLine-1] += spec
		lines[jsonLine-1] = ""
	case otherLine != 0:
		lines[otherLine-1] += spec
		lines[jsonLine-1] = ""
	case lastLine != 0:
		lines[lastLine-1] += "\n" + spec // a group of its own
		lines[jsonLine-1] = ""
	default:
		lines[jsonLine-1] = spec // the only import of its block
	}
	if c := strings.Index(old, "//"); c >= 0 && !single && lines[jsonLine-1] == "" {
		return nil, false, fmt.Errorf("%s:%d: a comment on the encoding/json import: convert it by hand", name, jsonLine)
	}
	out, err := format.Source([]byte(strings.Join(lines, "")))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return out, !bytes.Equal(out, src), nil
}
