package metrics

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The collector for OpenWrt's prometheus-node-exporter-lua, shipped in the
// carpd package (/usr/lib/lua/prometheus-collectors/carpd.lua).
const luaCollector = "../../package/carpd/files/prometheus-collectors/carpd.lua"

// upstreamEnv names prometheus-node-exporter-lua's main script (from
// openwrt/packages, utils/prometheus-node-exporter-lua/files/usr/bin/);
// TestLuaCollector then also runs the collector under it. Not part of this
// repository.
const upstreamEnv = "CARPD_NODE_EXPORTER_LUA"

func findLua(t *testing.T) string {
	for _, name := range []string{"lua5.1", "lua"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
		t.Fatal("no lua5.1 on PATH (apt-get install lua5.1); CARPD_REQUIRE_NETNS=1 forbids skipping")
	}
	t.Skip("no lua5.1 on PATH (apt-get install lua5.1): the prometheus-node-exporter-lua collector is not tested")
	return ""
}

// luaEnv is a directory with the collector where the exporter looks for
// it, and stand-ins for carpd and uci on PATH: carpd prints prom (and
// records its arguments) and exits with rc, uci prints sock (or fails, as
// uci -q does for a missing option).
type luaEnv struct {
	dir, argsFile string
	env           []string
}

func newLuaEnv(t *testing.T, prom string, rc int, sock string) *luaEnv {
	dir := t.TempDir()
	e := &luaEnv{dir: dir, argsFile: filepath.Join(dir, "carpd.args")}
	for path, body := range map[string]string{
		"prometheus-collectors/carpd.lua": readFile(t, luaCollector),
		"metrics.prom":                    prom,
		"bin/carpd": fmt.Sprintf("#!/bin/sh\necho \"$*\" > %q\ncat %q\nexit %d\n",
			e.argsFile, filepath.Join(dir, "metrics.prom"), rc),
		"bin/uci": fmt.Sprintf("#!/bin/sh\n[ \"$*\" = \"-q get carpd.@carpd[0].control_socket\" ] || exit 2\n[ -n %q ] || exit 1\necho %q\n", sock, sock),
	} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"),
		"LUA_PATH="+dir+"/?.lua;;")
	return e
}

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *luaEnv) run(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = e.env
	var o, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, o.String(), errb.String())
	}
	return o.String(), errb.String()
}

// carpdPart is the collector's part of an exporter's output: the lines of
// the carpd_ families (the exporter's own node_scrape_* lines are
// interleaved with the collectors' by design).
func carpdPart(out string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if strings.HasPrefix(l, "carpd_") || strings.HasPrefix(l, "# TYPE carpd_") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// sameSeries checks that got has exactly the samples of want, labels
// compared as sets (the exporter writes them in pairs() order).
func sameSeries(t *testing.T, want, got string) {
	t.Helper()
	key := func(line string) string {
		s, name, err := parseSample(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		var b strings.Builder
		b.WriteString(name)
		keys := slices.Sorted(maps.Keys(s.labels))
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", k, s.labels[k])
		}
		fmt.Fprintf(&b, " = %v", s.value)
		return b.String()
	}
	samples := func(text string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(text, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				m[key(l)]++
			}
		}
		return m
	}
	w, g := samples(want), samples(got)
	for k, n := range w {
		if g[k] != n {
			t.Errorf("exporter: %q %d times, want %d", k, g[k], n)
		}
	}
	for k := range g {
		if w[k] == 0 {
			t.Errorf("exporter: %q, which carpd metrics did not print", k)
		}
	}
	if len(w) < 100 {
		t.Errorf("only %d samples compared", len(w))
	}
}

// TestLuaCollector runs the collector in a real Lua 5.1 (OpenWrt's) under
// testdata/exporter.lua, a stand-in for prometheus-node-exporter-lua's
// metric() interface, and, when CARPD_NODE_EXPORTER_LUA names the real
// exporter's main script, under that too. The collector must pass on every
// sample of `carpd metrics` unchanged, with the
// TYPE lines the exporter writes, in valid text format (promtool); use
// the control socket of /etc/config/carpd; and when carpd does not answer
// pass on carpd_up 0 and fail the scrape.
func TestLuaCollector(t *testing.T) {
	lua := findLua(t)
	// The fixture, with a tracker name that needs escaping in a label
	// value (quote, backslash, newline): the collector must keep the
	// escapes as carpd wrote them.
	js := strings.ReplaceAll(readFile(t, fixture), `"wan_ping"`, `"wan\"ping\\x\ny"`)
	var b bytes.Buffer
	if err := Write(&b, []byte(js)); err != nil {
		t.Fatal(err)
	}
	prom := b.String()
	if !strings.Contains(prom, `source="wan\"ping\\x\ny"`) {
		t.Fatalf("no escaped label in:\n%s", prom)
	}

	t.Run("stand-in", func(t *testing.T) {
		e := newLuaEnv(t, prom, 0, "")
		out, _ := e.run(t, lua, "testdata/exporter.lua", "carpd")
		part := carpdPart(out)
		sameSeries(t, prom, part)
		if !strings.Contains(out, `node_scrape_collector_success{collector="carpd"} 1`) {
			t.Errorf("the scrape failed:\n%s", out)
		}
		if got := strings.TrimSpace(readFile(t, e.argsFile)); got != "metrics" {
			t.Errorf("carpd ran with %q, want metrics (no socket in the config)", got)
		}
		// Each family's TYPE line once, before its samples (promtool
		// checks the order; HELP lines are not passed on).
		if n, want := strings.Count(part, "# TYPE "), strings.Count(prom, "# TYPE "); n != want || strings.Contains(part, "# HELP") {
			t.Errorf("%d TYPE lines, want %d", n, want)
		}
		promtoolCheck(t, part, true)
	})

	t.Run("socket from uci", func(t *testing.T) {
		e := newLuaEnv(t, prom, 0, "/tmp/run/my carpd.sock")
		e.run(t, lua, "testdata/exporter.lua", "carpd")
		if got := strings.TrimSpace(readFile(t, e.argsFile)); got != "metrics -s /tmp/run/my carpd.sock" {
			t.Errorf("carpd ran with %q", got)
		}
	})

	t.Run("carpd down", func(t *testing.T) {
		var down bytes.Buffer
		WriteDown(&down)
		e := newLuaEnv(t, down.String(), 1, "")
		out, errs := e.run(t, lua, "testdata/exporter.lua", "carpd")
		if !strings.Contains(out, "\ncarpd_up 0\n") || !strings.Contains(out, `node_scrape_collector_success{collector="carpd"} 0`) ||
			!strings.Contains(errs, "no answer from carpd") {
			t.Errorf("carpd down: stdout\n%s\nstderr %s", out, errs)
		}
	})

	t.Run("upstream", func(t *testing.T) {
		script := os.Getenv(upstreamEnv)
		if script == "" {
			t.Skipf("set %s to prometheus-node-exporter-lua's main script to run the collector under it", upstreamEnv)
		}
		e := newLuaEnv(t, prom, 0, "")
		// The script lists /usr/lib/lua/prometheus-collectors/*.lua and
		// needs luasocket for its timing: point the one at our directory
		// and stand in for the other if it is not installed. The script
		// itself runs unchanged.
		prelude := fmt.Sprintf(`local popen = io.popen
io.popen = function(cmd, ...)
	cmd = cmd:gsub("/usr/lib/lua/prometheus%%-collectors/", %q)
	return popen(cmd, ...)
end
if not pcall(require, "socket") then
	package.loaded.socket = { gettime = os.time }
end`, e.dir+"/prometheus-collectors/")
		out, errs := e.run(t, lua, "-e", prelude, script)
		part := carpdPart(out)
		sameSeries(t, prom, part)
		if !strings.Contains(out, `node_scrape_collector_success{collector="carpd"} 1`) {
			t.Errorf("the scrape failed: %s\n%s", errs, out)
		}
		promtoolCheck(t, part, true)
	})
}
