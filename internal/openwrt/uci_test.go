package openwrt

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Helpers that build expected values; lines are 1-based as in ParseUCI.

func sec(typ, name string, line int, opts ...*Option) *Section {
	return &Section{Type: typ, Name: name, Line: line, Options: opts}
}

func anon(typ, name string, line int, opts ...*Option) *Section {
	s := sec(typ, name, line, opts...)
	s.Anonymous = true
	return s
}

func opt(name, value string, line int) *Option {
	return &Option{Name: name, Values: []string{value}, Line: line, ValueLines: []int{line}}
}

// lst builds a list whose items come from the given lines; Line is the first.
func lst(name string, values []string, lines []int) *Option {
	return &Option{Name: name, Values: values, List: true, Line: lines[0], ValueLines: lines}
}

func TestParseUCI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []*Section
	}{
		{
			name: "empty",
			in:   "",
		},
		{
			name: "only comments and blank lines",
			in:   "# a comment\n\n   \t# indented comment\n\n",
		},
		{
			name: "uci export output",
			in:   "package carpd\n\nconfig carpd 'global'\n\toption preempt '1'\n\nconfig vhid 'lan'\n\tlist address '10.0.0.1/24'\n\tlist address 'fd00::1/64'\n\n",
			want: []*Section{
				sec("carpd", "global", 3, opt("preempt", "1", 4)),
				sec("vhid", "lan", 6, lst("address", []string{"10.0.0.1/24", "fd00::1/64"}, []int{7, 8})),
			},
		},
		{
			name: "indentation is optional and bare words need no quotes",
			in:   "config vhid lan\noption vhid 1\n      option advskew 100\n",
			want: []*Section{sec("vhid", "lan", 1, opt("vhid", "1", 2), opt("advskew", "100", 3))},
		},
		{
			name: "quoted keywords arguments and tabs between words",
			in:   "config\t'vhid'\t\"lan\"\n\toption\t'interface'\t\"br-lan\"\n",
			want: []*Section{sec("vhid", "lan", 1, opt("interface", "br-lan", 2))},
		},
		{
			name: "CRLF line ends",
			in:   "config vhid 'lan'\r\n\toption vhid '7'\r\n\toption interface eth0\r\n",
			want: []*Section{sec("vhid", "lan", 1, opt("vhid", "7", 2), opt("interface", "eth0", 3))},
		},
		{
			name: "abbreviated keywords",
			in:   "c vhid 'lan'\no vhid '1'\nl address '10.0.0.1'\np carpd\n",
			want: []*Section{sec("vhid", "lan", 1, opt("vhid", "1", 2), lst("address", []string{"10.0.0.1"}, []int{3}))},
		},
		{
			name: "comments after statements",
			in:   "config vhid 'lan' # the LAN\n\toption a 'x' # note\n\toption b y#z\n\toption c 'p'#q\n\toption d 'has # inside'\n\toption e \"also # inside\"\n",
			want: []*Section{sec("vhid", "lan", 1,
				opt("a", "x", 2), opt("b", "y", 3), opt("c", "p", 4),
				opt("d", "has # inside", 5), opt("e", "also # inside", 6))},
		},
		{
			name: "semicolons end statements",
			in:   "config vhid 'lan'; option a 'x'; option b y;option c z ; list d 1;list d 2\nconfig x;option e f\n",
			want: []*Section{
				sec("vhid", "lan", 1, opt("a", "x", 1), opt("b", "y", 1), opt("c", "z", 1), lst("d", []string{"1", "2"}, []int{1, 1})),
				anon("x", "cfg02b61d", 2, opt("e", "f", 2)),
			},
		},
		{
			name: "semicolon inside quotes",
			in:   "config t 's'\n\toption a 'x;y'\n\toption b \"p;q\"\n",
			want: []*Section{sec("t", "s", 1, opt("a", "x;y", 2), opt("b", "p;q", 3))},
		},
		{
			name: "single quotes have no escapes",
			in:   `config t 's'` + "\n" + `option a 'back\slash'` + "\n" + `option b 'x\'` + "\n",
			want: []*Section{sec("t", "s", 1, opt("a", `back\slash`, 2), opt("b", `x\`, 3))},
		},
		{
			name: "double quotes take the next character literally",
			in:   `config t 's'` + "\n" + `option a "say \"hi\""` + "\n" + `option b "a\\b"` + "\n" + `option c "\n\t\,"` + "\n" + `option d "it's"` + "\n",
			// uci does not decode C escapes: \n is the letter n.
			want: []*Section{sec("t", "s", 1, opt("a", `say "hi"`, 2), opt("b", `a\b`, 3), opt("c", `nt,`, 4), opt("d", "it's", 5))},
		},
		{
			name: "backslash outside quotes",
			in:   `config t 's'` + "\n" + `option a a\ b` + "\n" + `option b \#x\;y\'` + "\n",
			want: []*Section{sec("t", "s", 1, opt("a", "a b", 2), opt("b", "#x;y'", 3))},
		},
		{
			name: "adjacent pieces concatenate",
			in:   `config t 's'` + "\n" + `option a 'a'"b"c` + "\n" + `option b 'it'\''s'` + "\n" + `option c x'y z'"w"` + "\n" + `option d ''"x"''` + "\n",
			want: []*Section{sec("t", "s", 1, opt("a", "abc", 2), opt("b", "it's", 3), opt("c", "xy zw", 4), opt("d", "x", 5))},
		},
		{
			name: "quoted values span lines",
			in:   "config t 's'\n\toption a 'line 1\nline 2'\n\toption b \"x\n\n y\"\n\toption c after\n",
			want: []*Section{sec("t", "s", 1, opt("a", "line 1\nline 2", 2), opt("b", "x\n\n y", 4), opt("c", "after", 7))},
		},
		{
			// The same constructs as libuci's own export test
			// (tests/shunit2/references/export.data): a backslash before a
			// newline joins lines in double quotes, but not in single ones.
			name: "backslash newline",
			in:   "config t 's'\n\toption sq 'one \\\ntwo'\n\toption dq \"\\\"Hi\\, \\\nthere\\'\n\"\n\toption bare a\\\nb\n\toption crlf \"x\\\r\ny\"\n\toption last z\n",
			want: []*Section{sec("t", "s", 1,
				opt("sq", "one \\\ntwo", 2),
				opt("dq", "\"Hi, there'\n", 4),
				opt("bare", "ab", 7),
				opt("crlf", "xy", 9),
				opt("last", "z", 11))},
		},
		{
			name: "backslash at end of file vanishes",
			in:   "config t 's'\noption a b\\",
			want: []*Section{sec("t", "s", 1, opt("a", "b", 2))},
		},
		{
			name: "no newline at end of file",
			in:   "config t 's'\noption a b",
			want: []*Section{sec("t", "s", 1, opt("a", "b", 2))},
		},
		{
			name: "lists keep order and may hold empty items",
			in:   "config t 's'\nlist l c\nlist l a\nlist l ''\nlist l\nlist l b\n",
			want: []*Section{sec("t", "s", 1, lst("l", []string{"c", "a", "", "", "b"}, []int{2, 3, 4, 5, 6}))},
		},
		{
			name: "option set again is replaced in place",
			in:   "config t 's'\noption a 1\noption b 2\noption a 3\noption b 2\n",
			want: []*Section{sec("t", "s", 1, opt("a", "3", 4), opt("b", "2", 3))},
		},
		{
			name: "empty option value is ignored, but remembered in Cleared",
			in:   "config t 's'\noption a 1\noption a ''\noption b\noption c \"\"\n",
			want: []*Section{func() *Section {
				s := sec("t", "s", 1, opt("a", "1", 2))
				s.Cleared = map[string]int{"a": 3, "b": 4, "c": 5}
				return s
			}()},
		},
		{
			name: "list after option extends it",
			in:   "config t 's'\noption a 1\noption z 0\nlist a 2\n",
			want: []*Section{sec("t", "s", 1, lst("a", []string{"1", "2"}, []int{2, 4}), opt("z", "0", 3))},
		},
		{
			name: "option after list replaces it",
			in:   "config t 's'\nlist a 1\nlist a 2\noption z 0\noption a 3\n",
			want: []*Section{sec("t", "s", 1, opt("a", "3", 5), opt("z", "0", 4))},
		},
		{
			name: "anonymous sections get uci names",
			// cfg01e48a is what `uci show -X system` prints on OpenWrt for
			// the first `config system`.
			in: "config system\n\toption hostname x\nconfig vhid 'lan'\nconfig vhid\nconfig vhid ''\n",
			want: []*Section{
				anon("system", "cfg01e48a", 1, opt("hostname", "x", 2)),
				sec("vhid", "lan", 3),
				anon("vhid", "cfg038c90", 4),
				anon("vhid", "cfg048c90", 5),
			},
		},
		{
			name: "named section reopened with the same type",
			in:   "config vhid 'lan'\noption a 1\nconfig vhid 'wan'\nconfig vhid 'lan'\noption b 2\nconfig vhid\n",
			want: []*Section{
				sec("vhid", "lan", 1, opt("a", "1", 2), opt("b", "2", 5)),
				sec("vhid", "wan", 3),
				anon("vhid", "cfg038c90", 6),
			},
		},
		{
			name: "section types may use punctuation",
			in:   "config 'a.b-c:d' 'x'\nconfig \"it's\"\n",
			want: []*Section{sec("a.b-c:d", "x", 1), anon("it's", "cfg02963c", 2)},
		},
		{
			name: "package anywhere is ignored",
			in:   "package carpd\nconfig t 's'\npackage other-name\noption a b\n",
			want: []*Section{sec("t", "s", 2, opt("a", "b", 4))},
		},
		{
			name: "tab and DEL are allowed in values",
			in:   "config t 's'\noption a 'x\ty\x7f'\n",
			want: []*Section{sec("t", "s", 1, opt("a", "x\ty\x7f", 2))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseUCI("test", []byte(tt.in))
			if err != nil {
				t.Fatalf("ParseUCI: %v", err)
			}
			want := &File{Name: "test", Sections: tt.want}
			if diff := cmp.Diff(want, f); diff != "" {
				t.Errorf("ParseUCI mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUCIErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole Error() text
	}{
		{"option before config", "# header\n\noption a b\n", "f:3: option before the first config line"},
		{"list before config", "list a b\n", "f:1: list before the first config line"},
		{"unterminated single quote", "config t 's'\noption a 'x\ny\nz\n", "f:2: unterminated ' quote (end of file reached)"},
		{"unterminated double quote", "config t 's'\n\noption a \"x\\\"\n", "f:3: unterminated \" quote (end of file reached)"},
		{"unterminated after escape at end", "config t 's'\noption a \"x\\", "f:2: unterminated \" quote (end of file reached)"},
		{"invalid command", "config t 's'\nopt a b\n", `f:2: invalid command "opt"`},
		{"quoted keyword", "'config' t 's'\n", `f:1: invalid command "config"`},
		{"lone semicolon", "config t 's'\n;\n", `f:2: invalid command ";"`},
		{"double semicolon", "config t 's';;\n", `f:1: invalid command ";"`},
		{"config without type", "config\n", "f:1: config: missing section type"},
		{"config with empty type", "config '' x\n", "f:1: config: missing section type"},
		{"bad section type", "config 'a b'\n", `f:1: config: invalid section type "a b": only printable ASCII without spaces is allowed`},
		{"non-ASCII section type", "config 'v\u00e9'\n", `f:1: config: invalid section type "vé": only printable ASCII without spaces is allowed`},
		{"bad section name", "config t 'a.b'\n", `f:1: config: invalid section name "a.b": only A-Z, a-z, 0-9 and _ are allowed`},
		{"hyphen in section name", "\nconfig t 'br-lan'\n", `f:2: config: invalid section name "br-lan": only A-Z, a-z, 0-9 and _ are allowed`},
		{"config too many arguments", "config t s x\n", "f:1: config: too many arguments (quote a value that contains spaces)"},
		{"option without name", "config t s\noption\n", "f:2: option: missing name"},
		{"option with empty name", "config t s\noption '' x\n", "f:2: option: missing name"},
		{"bad option name", "config t s\n\toption a-b x\n", `f:2: option: invalid name "a-b": only A-Z, a-z, 0-9 and _ are allowed`},
		{"option too many arguments", "config t s\noption a b c\n", "f:2: option: too many arguments (quote a value that contains spaces)"},
		{"too many arguments on a later line", "config t s\noption a 'x\ny' c\n", "f:3: option: too many arguments (quote a value that contains spaces)"},
		{"list too many arguments", "config t s\nlist a b c\n", "f:2: list: too many arguments (quote a value that contains spaces)"},
		{"package without name", "package\n", "f:1: package: missing name"},
		{"bad package name", "package 'a.b'\n", `f:1: package: invalid name "a.b": only A-Z, a-z, 0-9, _ and - are allowed`},
		{"package too many arguments", "package a b\n", "f:1: package: too many arguments (quote a value that contains spaces)"},
		{"control character in value", "config t s\n\noption a 'x\x01y'\n", "f:3: invalid control character 0x01"},
		{"NUL in bare word", "config t s\noption a x\x00\n", "f:2: invalid control character 0x00"},
		{"control character in comment", "config t s\n# \x1b[1m\n", "f:2: invalid control character 0x1b"},
		{"escaped control character", "config t s\noption a \\\x07\n", "f:2: invalid control character 0x07"},
		{"control character in double quotes", "config t s\noption a \"\x0c\"\n", "f:2: invalid control character 0x0c"},
		{"control character after multi-line value", "config t s\noption a 'x\ny'\x0b\n", "f:3: invalid control character 0x0b"},
		{
			"name reused with another type",
			"config vhid 'lan'\nconfig carpd 'lan'\n",
			`f:2: config: section "lan" was declared with type "vhid" at line 1; a section of type "carpd" cannot reuse its name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseUCI("f", []byte(tt.in))
			if err == nil {
				t.Fatalf("ParseUCI succeeded, want error %q; got %+v", tt.want, f)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if f != nil {
				t.Errorf("ParseUCI returned a File with an error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseErrorFields(t *testing.T) {
	_, err := ParseUCI("/etc/config/carpd", []byte("config t s\n\n\toption bad-name x\n"))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *ParseError", err)
	}
	want := &ParseError{File: "/etc/config/carpd", Line: 3, Msg: `option: invalid name "bad-name": only A-Z, a-z, 0-9 and _ are allowed`}
	if diff := cmp.Diff(want, pe); diff != "" {
		t.Errorf("ParseError mismatch (-want +got):\n%s", diff)
	}
}

func TestGet(t *testing.T) {
	in := `
config carpd 'global'
config vhid 'lan'
	option vhid 1
config vhid
	option vhid 2
config sync
config vhid 'wan'
	option vhid 3
`
	f, err := ParseUCI("f", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want string // section name, "" for nil
	}{
		{"global", "global"},
		{"lan", "lan"},
		{"wan", "wan"},
		{"cfg038c90", "cfg038c90"},
		{"missing", ""},
		{"@vhid[0]", "lan"},
		{"@vhid[1]", "cfg038c90"},
		{"@vhid[2]", "wan"},
		{"@vhid[3]", ""},
		{"@vhid[-1]", "wan"},
		{"@vhid[-3]", "lan"},
		{"@vhid[-4]", ""},
		{"@carpd[0]", "global"},
		{"@carpd[-1]", "global"},
		{"@sync[0]", "cfg043062"},
		{"@nothing[0]", ""},
		{"@[0]", "global"},
		{"@[3]", "cfg043062"},
		{"@[-1]", "wan"},
		{"@vhid", ""},
		{"@vhid[", ""},
		{"@vhid[]", ""},
		{"@vhid[x]", ""},
		{"@vhid[0]x", ""},
		{"@vhid[0][1]", ""},
		{"@a b[0]", ""},
		{"", ""},
		{"@", ""},
	}
	for _, tt := range tests {
		got := ""
		if s := f.get(tt.ref); s != nil {
			got = s.Name
		}
		if got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
	if o := f.get("@vhid[1]").Option("vhid"); o == nil || o.Values[0] != "2" {
		t.Errorf("@vhid[1].vhid = %+v, want 2", o)
	}
	if o := f.get("lan").Option("nope"); o != nil {
		t.Errorf("Option(nope) = %+v, want nil", o)
	}
}

func TestFormat(t *testing.T) {
	in := "package carpd\n" +
		"config carpd 'global'; option log_level info\n" +
		"config vhid # anonymous\n" +
		"\toption password \"it's\"\n" +
		"\tlist address 10.0.0.1\n" +
		"\tlist address ''\n" +
		"\toption note 'two\nlines'\n" +
		"config 'odd#type'\n"
	want := `
config carpd 'global'
	option log_level 'info'

config vhid
	option password 'it'\''s'
	list address '10.0.0.1'
	list address ''
	option note 'two
lines'

config 'odd#type'

`
	f, err := ParseUCI("f", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out := f.format()
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("Format mismatch (-want +got):\n%s", diff)
	}
	g, err := ParseUCI("f", out)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if diff := cmp.Diff(stripLines(f), stripLines(g)); diff != "" {
		t.Errorf("round trip mismatch (-orig +reparsed):\n%s", diff)
	}
}

func TestFormatEmpty(t *testing.T) {
	if got := string((&File{}).format()); got != "\n" {
		t.Errorf("Format of an empty file = %q, want %q", got, "\n")
	}
	// A hand-built option without a value is left out, as uci would drop it.
	f := &File{Sections: []*Section{{Type: "t", Name: "s", Options: []*Option{{Name: "a"}, {Name: "b", Values: []string{""}}}}}}
	if got, want := string(f.format()), "\nconfig t 's'\n\n"; got != want {
		t.Errorf("Format = %q, want %q", got, want)
	}
}

// stripLines returns f without what Format does not write back: line
// numbers, and Cleared (options set to the empty string, which Format drops as
// `uci commit` does).
func stripLines(f *File) *File {
	out := &File{Name: f.Name}
	for _, s := range f.Sections {
		c := *s
		c.Line, c.Cleared = 0, nil
		c.Options = nil
		for _, o := range s.Options {
			oc := *o
			oc.Line, oc.ValueLines = 0, nil
			c.Options = append(c.Options, &oc)
		}
		out.Sections = append(out.Sections, &c)
	}
	return out
}

func TestAnonymousName(t *testing.T) {
	// Names seen on real OpenWrt systems with `uci show -X`.
	for _, tt := range []struct {
		n    int
		typ  string
		want string
	}{
		{1, "system", "cfg01e48a"},
		{1, "defaults", "cfg01e63d"},
		{1, "dnsmasq", "cfg01411c"},
		{2, "zone", "cfg02dc81"},
		{256, "vhid", "cfg1008c90"},
	} {
		if got := anonymousName(tt.n, tt.typ); got != tt.want {
			t.Errorf("anonymousName(%d, %q) = %q, want %q", tt.n, tt.typ, got, tt.want)
		}
	}
}

func TestParseUCILongInput(t *testing.T) {
	// Many sections and a long multi-line value: no quadratic blow-up in
	// the common shapes, and line numbers stay right.
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		b.WriteString("config vhid\n\toption vhid 1\n")
	}
	b.WriteString("config t 'last'\n\toption v '" + strings.Repeat("x\n", 1000) + "'\n\toption w y\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&b, "option o%d %d\n", i, i) // distinct names: no linear lookup
	}
	f, err := ParseUCI("f", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	last := f.get("last")
	if last == nil || last.Line != 4001 || last.Option("w").Line != 5003 {
		t.Errorf("last section %+v, want line 4001 with w at 5003", last)
	}
	if n := len(last.Options); n != 50002 {
		t.Errorf("last section has %d options, want 50002", n)
	}
	if got := f.get("@vhid[-1]").Name; got != "cfg7d08c90" {
		t.Errorf("2000th anonymous vhid is %q, want cfg7d08c90", got)
	}
}
