package openwrt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzSeeds are valid and invalid files for both targets. More seeds, in
// Go's corpus file format, are in testdata/fuzz/FuzzParseUCI.
var fuzzSeeds = []string{
	"",
	"package carpd\n\nconfig carpd 'global'\n\toption preempt '1'\n\nconfig vhid 'lan'\n\toption interface 'br-lan'\n\toption vhid '1'\n\tlist address '192.168.1.1/24'\n\tlist address 'fd00::1/64'\n\tlist peer '192.168.1.3' # unicast\n",
	"config vhid; option a 'x'\"y\"z; list l ''; list l 'it'\\''s'\nconfig 'odd#type'\n\toption m 'multi\nline'\n",
	"c t\no a \"\\\"q\\\\\\\n\"\nl b c\no b d\nconfig t 'n'\nconfig t 'n'\no e f\n",
	"config t 's'\n\toption a\n\toption b ''\n\tlist c\n\toption d x # c\r\n\toption e y\\\n z\n",
	"config vhid\n\toption enabled 0\nconfig vhid 'x'\n\toption vhid 300\n\toption advskew -1\n\toption preempt maybe\n\tlist address nope\n\tlist peer 224.0.0.18\nconfig carpd\nconfig carpd\nconfig sync\nconfig what\n\toption ever 1\n",
	"config carpd 'global'\n\toption log_level loud\n\tlist state_file a\nconfig vhid 'global'\n\toption password '01234567890123456789'\n",
	// Invalid files.
	"option a b\n",
	"config t 's'\noption a 'unterminated\n",
	"config t 's'\noption a \"unterminated\\\"\n",
	"config 'a b'\n",
	"config t 'a.b'\n",
	"config t s x\n",
	"config t s\n;\n",
	"config t s\noption a \x01\n",
	"config vhid 'x'\nconfig carpd 'x'\n",
	"bogus\n",
}

func FuzzParseUCI(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseUCI("fuzz", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || file != nil {
				t.Fatalf("ParseUCI = %v, %v (%T); want nil and a *ParseError", file, err, err)
			}
			if maxLine := bytes.Count(data, []byte("\n")) + 1; pe.Line < 1 || pe.Line > maxLine || !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q: line %d outside 1-%d", err, pe.Line, maxLine)
			}
			return
		}
		checkFile(t, file, data)

		// Round trip: what Format writes reads back to the same File.
		out := file.format()
		again, err := ParseUCI("fuzz", out)
		if err != nil {
			t.Fatalf("ParseUCI(Format()) failed: %v\ninput:  %q\nformat: %q", err, data, out)
		}
		if diff := cmp.Diff(stripLines(file), stripLines(again)); diff != "" {
			t.Fatalf("round trip mismatch (-parsed +reparsed):\n%s\ninput:  %q\nformat: %q", diff, data, out)
		}
		if out2 := again.format(); !bytes.Equal(out, out2) {
			t.Fatalf("Format is not stable:\nfirst:  %q\nsecond: %q", out, out2)
		}
	})
}

// checkFile asserts the invariants of a File that ParseUCI returns.
func checkFile(t *testing.T, f *File, data []byte) {
	t.Helper()
	maxLine := bytes.Count(data, []byte("\n")) + 1
	for _, s := range f.Sections {
		if !validType(s.Type) || !validName(s.Name) || s.Line < 1 || s.Line > maxLine {
			t.Fatalf("bad section %+v", s)
		}
		seen := map[string]bool{}
		for _, o := range s.Options {
			if !validName(o.Name) || seen[o.Name] || len(o.Values) == 0 || len(o.ValueLines) != len(o.Values) {
				t.Fatalf("bad option %+v in section %q", o, s.Name)
			}
			seen[o.Name] = true
			if !o.List && (len(o.Values) != 1 || o.Values[0] == "") {
				t.Fatalf("option %+v must have one non-empty value", o)
			}
			for i, l := range o.ValueLines {
				if l < s.Line || l > maxLine || (i > 0 && l < o.ValueLines[i-1]) {
					t.Fatalf("option %+v: value lines out of order or range", o)
				}
			}
			for _, v := range o.Values {
				if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\r' && r != '\n' }) {
					t.Fatalf("option %+v: control character in value", o)
				}
			}
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	// The UCI corpus is a good start for the mapping too.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.conf"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warnings, errs := ParseConfig("fuzz", data)
		if (cfg == nil) == (len(errs) == 0) {
			t.Fatalf("config %v with %d errors; want exactly one of them", cfg, len(errs))
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, "fuzz:") {
				t.Fatalf("warning %q does not name the file", w)
			}
		}
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q does not name the file", err)
			}
		}
		if cfg != nil {
			// Whatever maps cleanly must also pass validation on its own.
			if fes := cfg.Validate(); len(fes) > 0 {
				t.Fatalf("mapped config fails Validate: %v", fes)
			}
		}
	})
}

// TestFuzzCorpus makes sure the committed corpus is really there, so that a
// renamed directory cannot make the seeds silently disappear.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseUCI", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in testdata/fuzz/FuzzParseUCI (err %v)", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("go test fuzz v1\n[]byte(")) {
			t.Errorf("%s is not a []byte corpus file", name)
		}
	}
}
