package metrics

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/status.prom from the status fixture")

// fixture is the status document the LuCI views are tested against: the
// one place that holds every field carpd sends (internal/luciview checks
// it against daemon.Status).
const fixture = "../luciview/testdata/status.json"

func renderJSON(t *testing.T, js []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, js); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestGolden renders the fixture and compares it with testdata/status.prom
// (go test ./internal/metrics -run Golden -update rewrites it), then has
// promtool and this package's own parser check it.
func TestGolden(t *testing.T) {
	js, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	got := renderJSON(t, js)
	const golden = "testdata/status.prom"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/metrics -run Golden -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the fixture renders differently from %s (-update rewrites it after review):\n%s", golden, lineDiff(string(want), got))
	}
	fams := parse(t, got)
	// Spot checks of what the fixture says, so the golden file cannot
	// drift into something wrong unnoticed.
	for series, v := range map[string]float64{
		`carpd_up`: 1,
		`carpd_vhid_state{interface="br-lan",vhid="1",state="MASTER"}`:                        1,
		`carpd_vhid_state{interface="br-lan",vhid="1",state="BACKUP"}`:                        0,
		`carpd_vhid_state{interface="eth1",vhid="2",state="BACKUP"}`:                          1,
		`carpd_vhid_demotion{interface="eth1",vhid="2"}`:                                      3,
		`carpd_vhid_peer_demotion{interface="eth1",vhid="2"}`:                                 0,
		`carpd_vhid_demotion_source{interface="eth1",vhid="2",group="wan",source="wan_ping"}`: 1,
		`carpd_vhid_demotion_source{interface="eth1",vhid="2",group="wan",source="mwan3"}`:    2,
		`carpd_demotion_source_expiry_timestamp_seconds{group="wan",source="mwan3"}`:          1777888980,
		`carpd_maintenance_wait{state="waiting"}`:                                             1,
		`carpd_tracker_dropped_total{tracker="wan_ping",reason="wrong_source"}`:               3,
		`carpd_tracker_error{tracker="wan_ping"}`:                                             1,
		`carpd_tracker_error{tracker="lan_up"}`:                                               0,
		`carpd_group_demotion{group="wan"}`:                                                   3,
		`carpd_demotion_source{group="wan",source="wan_ping"}`:                                1,
		`carpd_vhid_adverts_sent_total{interface="br-lan",vhid="1"}`:                          2850,
		`carpd_vhid_adverts_dropped_total{interface="eth1",vhid="2",reason="bad_hmac"}`:       2,
		`carpd_vhid_transitions_total{interface="eth1",vhid="2"}`:                             2,
		`carpd_interface_dropped_total{interface="eth1",reason="unknown_vhid"}`:               17,
		`carpd_tracker_state{tracker="wan_ping",state="down"}`:                                1,
		`carpd_tracker_demotion{tracker="wan_ping"}`:                                          1,
		`carpd_tracker_rounds_total{tracker="wan_ping",result="bad"}`:                         2797,
		`carpd_tracker_target_rtt_seconds{tracker="wan_ping",target="198.51.100.1"}`:          0.0042,
		`carpd_split_brain_alarms_total`:                                                      1,
		`carpd_split_brain_since_timestamp_seconds{interface="br-lan",vhid="1"}`:              1777888692.5,
		`carpd_sync_link_state{state="established"}`:                                          1,
		`carpd_sync_rtt_seconds`:                                                              0.000412,
		`carpd_sync_flows{kind="pending"}`:                                                    37,
		`carpd_sync_sent_bytes_total`:                                                         48337152,
		`carpd_sync_retransmitted_flows_total`:                                                311,
		`carpd_sync_dropped_total{reason="replay"}`:                                           1,
		`carpd_sync_refused_flows_total{reason="protocol"}`:                                   3,
		`carpd_start_time_seconds`:                                                            1777622400.123,
	} {
		if g, ok := fams.value(series); !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	// Absent from the status, absent here (no split brain on eth1, no
	// expiry for wan_ping).
	for _, series := range []string{`carpd_split_brain_since_timestamp_seconds{interface="eth1",vhid="2"}`,
		`carpd_demotion_source_expiry_timestamp_seconds{group="wan",source="wan_ping"}`} {
		if _, ok := fams.value(series); ok {
			t.Errorf("%s, which the status does not have", series)
		}
	}
	promtool(t, got)
}

// promtool runs `promtool check metrics` (from Debian's prometheus
// package) on text. Without promtool the check is left out with a note,
// unless CARPD_REQUIRE_PROMTOOL=1: the package is too large (96 MB
// installed) for scripts/deps.sh, and parseText checks the same structure.
func promtool(t *testing.T, text string) {
	t.Helper()
	promtoolCheck(t, text, false)
}

// promtoolCheck is promtool; with noHelp, the lint finding "no help text"
// (and only that one) is expected: the exporter's metric() writes no HELP.
func promtoolCheck(t *testing.T, text string, noHelp bool) {
	t.Helper()
	bin := os.Getenv("CARPD_PROMTOOL")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("promtool"); err != nil {
			if os.Getenv("CARPD_REQUIRE_PROMTOOL") == "1" {
				t.Fatal("no promtool on PATH (Debian package prometheus); CARPD_REQUIRE_PROMTOOL=1 wants it")
			}
			t.Log("no promtool on PATH (apt-get install prometheus, or take usr/bin/promtool out of its .deb): checked by this package's parser only")
			return
		}
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	// promtool exits 1 on a parse error, 3 on lint findings (names,
	// units, HELP), which it prints one a line.
	var findings []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !(noHelp && strings.HasSuffix(l, " no help text")) {
			findings = append(findings, l)
		}
	}
	var exit *exec.ExitError
	lintOnly := errors.As(err, &exit) && exit.ExitCode() == 3
	if (err != nil && !(noHelp && lintOnly)) || len(findings) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, strings.Join(findings, "\n"))
	}
}

func TestDown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDown(&b); err != nil {
		t.Fatal(err)
	}
	fams := parse(t, b.String())
	if v, ok := fams.value("carpd_up"); !ok || v != 0 || len(fams.order) != 1 {
		t.Errorf("down: %q", b.String())
	}
	promtool(t, b.String())
}

// TestEscaping: names from the configuration and reasons go into label
// values; quotes, backslashes and newlines are escaped, and a parser gets
// the original strings back.
func TestEscaping(t *testing.T) {
	nasty := "a\"b\\c\nd}{,=é"
	js := fmt.Sprintf(`{"version": %q, "vhids": [{"interface": %q, "vhid": 7, "state": "BACKUP", "network": %q,
		"demotion_sources": [{"group": %q, "name": %q, "value": 3}]}],
		"trackers": [{"name": %q, "type": "ping", "state": "up", "targets": [{"address": %q, "sent": 1}], "dropped": {"z": 1, "a": 2}}],
		"sync": {"enabled": false}}`, nasty, nasty, nasty, nasty, nasty, nasty, nasty)
	text := renderJSON(t, []byte(js))
	fams := parse(t, text)
	var seen int
	for _, f := range fams.order {
		for _, s := range fams.fams[f].samples {
			for _, v := range s.labels {
				if v == nasty {
					seen++
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("the string came back %d times:\n%s", seen, text)
	}
	if !strings.Contains(text, `version="a\"b\\c\nd}{,=é"`) {
		t.Errorf("not escaped as the format says:\n%s", text)
	}
	// Map-keyed counters come out in a stable order.
	if i, j := strings.Index(text, `reason="a"`), strings.Index(text, `reason="z"`); i < 0 || j < i {
		t.Errorf("dropped reasons out of order:\n%s", text)
	}
	promtool(t, text)
}

// TestOlderStatus: the status of a carpd without groups, trackers or split
// brain (and with sync off, or failed) gives the families it can, and no
// split-brain counter that would read as "never".
func TestOlderStatus(t *testing.T) {
	text := renderJSON(t, []byte(`{"version": "0.1", "started": "0001-01-01T00:00:00Z", "demotion": {"manual": 1},
		"vhids": [{"interface": "eth0", "vhid": 1, "state": "INIT", "error": "no such device", "counters": {}}],
		"sync": {"enabled": true, "error": "no key"}}`))
	fams := parse(t, text)
	for _, absent := range []string{"carpd_split_brain_alarms_total", "carpd_start_time_seconds", "carpd_tracker_state",
		"carpd_sync_peer_up", "carpd_group_demotion", "carpd_vhid_state_since_timestamp_seconds"} {
		if _, ok := fams.fams[absent]; ok {
			t.Errorf("%s present:\n%s", absent, text)
		}
	}
	for series, v := range map[string]float64{
		`carpd_vhid_running{interface="eth0",vhid="1"}`:            0,
		`carpd_vhid_state{interface="eth0",vhid="1",state="INIT"}`: 1,
		`carpd_sync_link_state{state="error"}`:                     1,
		`carpd_sync_enabled`:                                       1,
	} {
		if g, ok := fams.value(series); !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	promtool(t, text)
}

// TestNotAStatus: only a JSON object is a status; within it, what is not
// of the expected type gives no sample.
func TestNotAStatus(t *testing.T) {
	for _, in := range []string{"", "[]", "3", "{", `"status"`} {
		var b bytes.Buffer
		if err := Write(&b, []byte(in)); err == nil || b.Len() != 0 {
			t.Errorf("%q: err %v, wrote %q", in, err, b.String())
		}
	}
	// A field of another type is left out, not trusted.
	text := renderJSON(t, []byte(`{"vhids": 3, "started": "yesterday", "trackers": [7, {"name": 5, "state": {}}], "sync": {"enabled": "yes"}}`))
	fams := parse(t, text)
	for _, absent := range []string{"carpd_vhid_state", "carpd_start_time_seconds", "carpd_sync_enabled", "carpd_sync_link_state"} {
		if _, ok := fams.fams[absent]; ok {
			t.Errorf("%s present:\n%s", absent, text)
		}
	}
	if v, ok := fams.value(`carpd_tracker_state{tracker="5",state="init"}`); !ok || v != 0 {
		t.Errorf("tracker named 5 with a bad state:\n%s", text)
	}
}

// FuzzWrite: whatever JSON comes in, Write either refuses it or writes
// text this package's parser accepts (names, labels, escaping, families
// together, no series twice).
func FuzzWrite(f *testing.F) {
	js, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"vhids": [{"interface": "\"\\\n", "vhid": 1}], "trackers": [{"name": "x", "dropped": {"\n": 1}}]}`))
	f.Add([]byte(`{"sync": {"enabled": true, "rtt": "-1h", "counters": {"drop_auth": 1e300}}}`))
	f.Add([]byte(`{"vhids": [{"interface": "a", "vhid": 1}, {"interface": "a", "vhid": 1.0}], "trackers": [1, 2]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b bytes.Buffer
		if Write(&b, in) != nil {
			return
		}
		if _, err := parseText(b.String()); err != nil {
			t.Fatalf("%v\ninput %q\noutput:\n%s", err, in, b.String())
		}
	})
}

// A minimal reader of the text format, strict where carpd's output must
// be: every sample follows its family's HELP and TYPE, a family appears
// once, a series once.
type parsedSample struct {
	labels map[string]string
	key    string // name{labels} as written
	value  float64
}

type fam struct {
	typ     string
	samples []parsedSample
}

type exp struct {
	order []string
	fams  map[string]*fam
	by    map[string]float64
}

func (e *exp) value(series string) (float64, bool) {
	v, ok := e.by[series]
	return v, ok
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	lnameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func parse(t *testing.T, text string) *exp {
	t.Helper()
	e, err := parseText(text)
	if err != nil {
		t.Fatalf("%v in:\n%s", err, text)
	}
	return e
}

func parseText(text string) (*exp, error) {
	e := &exp{fams: map[string]*fam{}, by: map[string]float64{}}
	if text == "" || !strings.HasSuffix(text, "\n") {
		return nil, errors.New("empty, or no final newline")
	}
	var cur string
	help := ""
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		bad := func(why string) error { return fmt.Errorf("line %d %q: %s", n+1, line, why) }
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, rest, _ := strings.Cut(line[len("# HELP "):], " ")
			if !nameRE.MatchString(name) || rest == "" || e.fams[name] != nil {
				return nil, bad("bad HELP, or a family twice")
			}
			help = name
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(line[len("# TYPE "):], " ")
			if name != help || (typ != "gauge" && typ != "counter") {
				return nil, bad("TYPE without its HELP, or an unknown type")
			}
			cur = name
			e.fams[name] = &fam{typ: typ}
			e.order = append(e.order, name)
		case strings.HasPrefix(line, "#"):
			return nil, bad("a comment")
		default:
			s, name, err := parseSample(line)
			if err != nil {
				return nil, bad(err.Error())
			}
			if name != cur {
				return nil, bad("a sample outside its family " + cur)
			}
			if e.fams[cur].typ == "counter" && !strings.HasSuffix(name, "_total") {
				return nil, bad("a counter without _total")
			}
			if _, dup := e.by[s.key]; dup {
				return nil, bad("a series twice")
			}
			e.by[s.key] = s.value
			e.fams[cur].samples = append(e.fams[cur].samples, s)
		}
	}
	return e, nil
}

func parseSample(line string) (parsedSample, string, error) {
	s := parsedSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, "", errors.New("no value")
	}
	name := line[:i]
	if !nameRE.MatchString(name) {
		return s, "", errors.New("bad name")
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for rest != "" && rest[0] != '}' {
			eq := strings.Index(rest, `="`)
			if eq < 0 || !lnameRE.MatchString(rest[:eq]) {
				return s, "", errors.New("bad label name")
			}
			lname := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			for {
				if rest == "" {
					return s, "", errors.New("unterminated label value")
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\n' {
					return s, "", errors.New("raw newline")
				}
				if c == '\\' {
					if rest == "" {
						return s, "", errors.New("lone backslash")
					}
					switch rest[0] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						return s, "", errors.New("bad escape")
					}
					rest = rest[1:]
					continue
				}
				v.WriteByte(c)
			}
			if _, dup := s.labels[lname]; dup {
				return s, "", errors.New("a label twice")
			}
			s.labels[lname] = v.String()
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			}
		}
		if rest == "" {
			return s, "", errors.New("unterminated labels")
		}
		rest = rest[1:]
	}
	if !strings.HasPrefix(rest, " ") {
		return s, "", errors.New("no space before the value")
	}
	val := rest[1:]
	v, err := strconv.ParseFloat(val, 64)
	if err != nil && val != "NaN" && val != "+Inf" && val != "-Inf" {
		return s, "", errors.New("bad value (or a timestamp)")
	}
	s.value, s.key = v, line[:len(line)-len(val)-1]
	return s, name, nil
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestDocumented: every family is in docs/metrics.md.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.Contains(string(doc), "`"+f.name+"`") {
			t.Errorf("%s is not in docs/metrics.md", f.name)
		}
	}
}
