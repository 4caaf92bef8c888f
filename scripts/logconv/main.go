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
	"fmt"
	"os"
	"regexp"

	"github.com/carpd/carpd/scripts/internal/moveimport"
)

const newPath = moveimport.Module + "/internal/logx"

// skip are the directories, relative to the root, left alone.
var skip = map[string]bool{"internal/logx": true, "ubus": true, "scripts": true}

var ident = regexp.MustCompile(`\bslog\.`)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	n, err := moveimport.Walk(root, skip, func(path string, src []byte) ([]byte, bool, error) { return convert(path, src) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "logconv:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "logconv: %d files moved from log/slog to internal/logx\n", n)
}

// convert returns src moved to logx, and whether it imported log/slog.
func convert(name string, src []byte) ([]byte, bool, error) {
	return moveimport.Move(name, src, "log/slog", newPath, moveimport.Options{
		Rewrite: func(b []byte) []byte { return ident.ReplaceAll(b, []byte("logx.")) },
	})
}
