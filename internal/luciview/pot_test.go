package luciview

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var updatePot = flag.Bool("update-pot", false, "rewrite package/luci-app-carpd/po/templates/carpd.pot from the views")

const appDir = "../../package/luci-app-carpd"

// i18nCall matches _('...') and _("...") with the escapes JavaScript string
// literals of the views use. A call with anything but one literal (a
// variable, a concatenation) is not translatable and fails the test.
var (
	i18nCall    = regexp.MustCompile(`\b_\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*[,)]`)
	i18nAnyCall = regexp.MustCompile(`\b_\(`)
)

type msg struct {
	id   string
	refs []string
}

// scanMessages collects the translatable strings of the views and of the
// menu (its titles), as LuCI's i18n-scan does, in first-seen order.
func scanMessages(t *testing.T) []msg {
	t.Helper()
	var out []msg
	index := map[string]int{}
	add := func(id, ref string) {
		if i, ok := index[id]; ok {
			out[i].refs = append(out[i].refs, ref)
			return
		}
		index[id] = len(out)
		out = append(out, msg{id: id, refs: []string{ref}})
	}
	views, err := filepath.Glob(filepath.Join(appDir, "htdocs/luci-static/resources/view/carpd/*.js"))
	if err != nil || len(views) == 0 {
		t.Fatalf("no views found: %v", err)
	}
	slices.Sort(views)
	for _, p := range views {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(appDir, p)
		for n, line := range strings.Split(string(b), "\n") {
			lits := i18nCall.FindAllStringSubmatch(line, -1)
			if len(lits) != len(i18nAnyCall.FindAllString(line, -1)) {
				t.Errorf("%s:%d: a _() call without a single string literal: %s", rel, n+1, strings.TrimSpace(line))
			}
			for _, m := range lits {
				id, err := jsString(m[1])
				if err != nil {
					t.Errorf("%s:%d: %v", rel, n+1, err)
					continue
				}
				add(id, fmt.Sprintf("%s:%d", rel, n+1))
			}
		}
	}
	menu := filepath.Join(appDir, "root/usr/share/luci/menu.d/luci-app-carpd.json")
	b, err := os.ReadFile(menu)
	if err != nil {
		t.Fatal(err)
	}
	var nodes map[string]struct {
		Title string `json:"title"`
	}
	if err := json.Unmarshal(b, &nodes); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rel, _ := filepath.Rel(appDir, menu)
	for _, k := range keys {
		if title := nodes[k].Title; title != "" {
			add(title, rel)
		}
	}
	return out
}

// jsString decodes a single- or double-quoted JavaScript literal.
func jsString(lit string) (string, error) {
	body := lit[1 : len(lit)-1]
	body = strings.ReplaceAll(body, `\'`, `'`)
	if lit[0] == '\'' {
		body = strings.ReplaceAll(body, `"`, `\"`)
	}
	s, err := strconv.Unquote(`"` + body + `"`)
	if err != nil {
		return "", fmt.Errorf("string literal %s: %v", lit, err)
	}
	return s, nil
}

func potQuote(s string) string {
	return strconv.Quote(s)
}

func renderPot(msgs []msg) string {
	var b strings.Builder
	b.WriteString("# Translation template of luci-app-carpd: go test ./internal/luciview -update-pot\n")
	b.WriteString("msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\"\n")
	for _, m := range msgs {
		b.WriteString("\n")
		for _, r := range m.refs {
			b.WriteString("#: " + r + "\n")
		}
		b.WriteString("msgid " + potQuote(m.id) + "\nmsgstr \"\"\n")
	}
	return b.String()
}

// TestPotTemplate: po/templates/carpd.pot holds every string the views
// and the menu pass to _(), so translators (and OpenWrt's po2lmo) have
// them; -update-pot rewrites it.
func TestPotTemplate(t *testing.T) {
	msgs := scanMessages(t)
	if len(msgs) < 50 {
		t.Fatalf("only %d translatable strings found: the scanner is broken", len(msgs))
	}
	want := renderPot(msgs)
	path := filepath.Join(appDir, "po/templates/carpd.pot")
	if *updatePot {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/luciview -update-pot)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with the views: go test ./internal/luciview -run TestPotTemplate -update-pot", path)
	}
	t.Logf("%d strings", len(msgs))
}
