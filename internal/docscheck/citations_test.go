package docscheck

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// designNoteCitation matches references to the developers' design notes,
// which live outside the repository (the specs, style and design pages the
// pattern names), and to their numbered sections ("§4.2", "spec §1.5", "sync.md §3", "the spec").
// A reader who clones carpd has none of them; what they need is in docs/.
var designNoteCitation = regexp.MustCompile(`shared/|specs/|STYLE|DESIGN\.md|(?:^|[^-\w])(carp|sync|openwrt|baselines|ha-features)\.md\b|§\s*[0-9]|\bthe (spec|brief)\b|spec authors`)

// TestNoDesignNoteCitations lists every line of the repository that cites
// the design notes instead of docs/.
func TestNoDesignNoteCitations(t *testing.T) {
	self, _ := filepath.Abs("citations_test.go")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch n := d.Name(); {
			case path == root:
			case strings.HasPrefix(n, "."), n == "testdata", n == "dist", n == "bin", n == "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if abs, _ := filepath.Abs(path); abs == self || d.Name() == "doc.go" && filepath.Base(filepath.Dir(path)) == "docscheck" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			return err // binary files are not read
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			if designNoteCitation.MatchString(sc.Text()) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d cites the design notes, not docs/: %s", rel, n, strings.TrimSpace(sc.Text()))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
