// Command logconv moves carpd's Go files from log/slog to internal/logx,
// which has slog's API in the part carpd uses and writes the same lines
// (docs/size-budget.md: log/slog costs 131,072 B of the mips binary).
//
//	go run ./scripts/logconv [DIR]
//
// In every .go file under DIR (default .) that imports "log/slog" it
// replaces the import by "github.com/carpd/carpd/internal/logx", placed
// among the file's other github.com/carpd/carpd imports (or in a group of
// its own after the standard library), renames every "slog." to "logx.",
// and gofmts the file. It leaves alone internal/logx (whose tests compare
// it with slog), ubus (a public package: its Config.Logger is an interface
// that *slog.Logger satisfies, and its tests use slog on purpose), scripts,
// testdata and hidden directories. Running it again changes nothing, so it
// can be rerun after merging code that was written against log/slog.
// `go run ./scripts/sizecheck lint` fails while the binary links log/slog.
//
// Merging a branch that still uses log/slog with one that has the
// conversion: a file that conflicts only because of the conversion is
// resolved by taking the slog side whole (git checkout --ours or --theirs,
// whichever is the branch without the conversion) and then running this
// command, which converts it again along with any new file.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const newPath = "github.com/carpd/carpd/internal/logx"

// skip are the directories, relative to the root, left alone.
var skip = map[string]bool{"internal/logx": true, "ubus": true, "scripts": true}

var ident = regexp.MustCompile(`\bslog\.`)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
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
		out, changed, err := convert(path, src)
		if err != nil || !changed {
			return err
		}
		n++
		fmt.Println(rel)
		return os.WriteFile(path, out, d.Type().Perm()|0o644)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "logconv:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "logconv: %d files moved from log/slog to internal/logx\n", n)
}

// convert returns src moved to logx, and whether it imported log/slog.
func convert(name string, src []byte) ([]byte, bool, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, false, err
	}
	var slogLine int  // line of the "log/slog" import
	var carpdLine int // line of the last github.com/carpd/carpd import
	var otherLine int // line of the last import outside the standard library
	var lastLine int  // line of the last import
	var single bool   // import "log/slog" on its own
	hasLogx := false
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		line := fset.Position(imp.Pos()).Line
		switch {
		case path == "log/slog":
			if imp.Name != nil {
				return nil, false, fmt.Errorf("%s: log/slog imported as %s: convert it by hand", name, imp.Name.Name)
			}
			slogLine = line
			for _, d := range f.Decls {
				if fset.Position(d.Pos()).Line == line {
					single = true // "import "log/slog"" on one line
				}
			}
			continue
		case path == newPath:
			hasLogx = true
		case strings.HasPrefix(path, "github.com/carpd/carpd/"):
			carpdLine = line
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			otherLine = line
		}
		lastLine = line
	}
	if slogLine == 0 {
		return src, false, nil
	}
	spec := "\t" + strconv.Quote(newPath) + "\n"
	lines := strings.SplitAfter(string(src), "\n")
	switch {
	case single:
		lines[slogLine-1] = strings.Replace(lines[slogLine-1], `"log/slog"`, strconv.Quote(newPath), 1)
	case hasLogx:
		lines[slogLine-1] = ""
	case carpdLine != 0:
		lines[carpdLine-1] += spec
		lines[slogLine-1] = ""
	case otherLine != 0:
		lines[otherLine-1] += spec
		lines[slogLine-1] = ""
	case lastLine != 0:
		lines[lastLine-1] += "\n" + spec // a group of its own
		lines[slogLine-1] = ""
	default:
		lines[slogLine-1] = spec // the only import of its block
	}
	out := ident.ReplaceAll([]byte(strings.Join(lines, "")), []byte("logx."))
	out, err = format.Source(out)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return out, !bytes.Equal(out, src), nil
}
