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
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/carpd/carpd/scripts/internal/moveimport"
)

const (
	module  = moveimport.Module
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
	n, err := moveimport.Walk(root, skip, func(path string, src []byte) ([]byte, bool, error) {
		abs, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return nil, false, err
		}
		if !binDirs[abs] && !(bytes.Contains(src, []byte("json.RawMessage")) && bytes.Contains(src, []byte(`"`+module+`/ubus`))) {
			return src, false, nil
		}
		return convert(path, src)
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

// convert returns src moved to ubus/json, and whether it changed. A
// file that imports encoding/json under another name (stdjson) keeps it.
func convert(name string, src []byte) ([]byte, bool, error) {
	return moveimport.Move(name, src, "encoding/json", newPath, moveimport.Options{SkipAliased: true})
}
