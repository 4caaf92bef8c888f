// Package moveimport is the common part of carpd's source converters
// (scripts/logconv, scripts/jsonconv): walk the tree's Go files, and move
// one import path to another in a file, keeping gofmt's grouping.
package moveimport

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Module is carpd's module path: its imports form the group a moved
// import joins.
const Module = "github.com/carpd/carpd"

// Walk calls conv for every .go file below root, except in the
// directories skip names (relative to root, slash-separated), hidden ones,
// testdata and node_modules, and writes back what conv changed, printing
// its path. It returns how many files changed.
func Walk(root string, skip map[string]bool, conv func(path string, src []byte) ([]byte, bool, error)) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
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
		out, changed, err := conv(path, src)
		if err != nil || !changed {
			return err
		}
		n++
		fmt.Println(rel)
		return os.WriteFile(path, out, d.Type().Perm()|0o644)
	})
	return n, err
}

// Options tunes Move.
type Options struct {
	// SkipAliased leaves a file alone that imports from under another
	// name (on purpose); without it such a file is an error.
	SkipAliased bool
	// Rewrite, when set, edits the file's text after the import moved
	// (say, renaming the package's identifiers).
	Rewrite func([]byte) []byte
}

// Move returns src with the import of from replaced by one of to: on its
// own line after the file's last carpd import, else after its last
// import outside the standard library, else in a group of its own. It
// reports whether the file changed.
func Move(name string, src []byte, from, to string, o Options) ([]byte, bool, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, false, err
	}
	var fromLine int  // line of the import of from
	var carpdLine int // line of the last carpd import
	var otherLine int // line of the last import outside the standard library
	var lastLine int  // line of the last import
	var single bool   // import "from" on its own
	has := false
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		line := fset.Position(imp.Pos()).Line
		switch {
		case path == from:
			if imp.Name != nil && imp.Name.Name != from[strings.LastIndex(from, "/")+1:] {
				if o.SkipAliased {
					return src, false, nil
				}
				return nil, false, fmt.Errorf("%s: %s imported as %s: convert it by hand", name, from, imp.Name.Name)
			}
			fromLine = line
			for _, d := range f.Decls {
				if fset.Position(d.Pos()).Line == line {
					single = true
				}
			}
			continue
		case path == to:
			has = true
		case strings.HasPrefix(path, Module+"/"):
			carpdLine = line
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			otherLine = line
		}
		lastLine = line
	}
	if fromLine == 0 {
		return src, false, nil
	}
	spec := "\t" + strconv.Quote(to) + "\n"
	lines := strings.SplitAfter(string(src), "\n")
	old := lines[fromLine-1]
	switch {
	case single:
		lines[fromLine-1] = "import " + strconv.Quote(to) + "\n"
	case has:
		lines[fromLine-1] = ""
	case carpdLine != 0:
		lines[carpdLine-1] += spec
		lines[fromLine-1] = ""
	case otherLine != 0:
		lines[otherLine-1] += spec
		lines[fromLine-1] = ""
	case lastLine != 0:
		lines[lastLine-1] += "\n" + spec // a group of its own
		lines[fromLine-1] = ""
	default:
		lines[fromLine-1] = spec // the only import of its block
	}
	if strings.Contains(old, "//") && !single && lines[fromLine-1] == "" {
		return nil, false, fmt.Errorf("%s:%d: a comment on the %s import: convert it by hand", name, fromLine, from)
	}
	out := []byte(strings.Join(lines, ""))
	if o.Rewrite != nil {
		out = o.Rewrite(out)
	}
	out, err = format.Source(out)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return out, !bytes.Equal(out, src), nil
}
