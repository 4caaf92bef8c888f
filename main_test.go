package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/openwrt"
	"github.com/carpd/carpd/ubus/json"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("config vhid 'lan'\n\toption interface 'eth0'\n\toption vhid '1'\n\tlist address '10.0.0.1/24'\n"), 0o644)
	if code, out, errs := runCLI("check-config", "-c", good); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("good config: code %d\n%s%s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("config vhid 'lan'\n\toption interface 'eth0'\n\toption vhid '0'\n\toption advskew '255'\n\toption password 'abcdefghijklmnopqrstu'\n\tlist address '10.0.0.1/24'\n"), 0o644)
	code, _, errs := runCLI("check-config", "-c", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + ":3: option 'vhid'",
		bad + ":4: option 'advskew'",
		bad + ":5: option 'password': is 21 bytes",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if code, _, errs := runCLI("check-config", "-c", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errs, "missing") {
		t.Errorf("missing file: %d %s", code, errs)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "carpd ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCLI("frobnicate"); code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	if code, _, errs := runCLI("status", "-s", filepath.Join(t.TempDir(), "nope.sock")); code != 1 || !strings.Contains(errs, "cannot reach carpd") {
		t.Errorf("status without daemon: %d %q", code, errs)
	}
	if code, _, _ := runCLI("demote", "-s", "/nonexistent", "x"); code != 2 {
		t.Errorf("demote with a bad number: %d", code)
	}
}

// TestREADMEConfigs parses every ```uci block of the README and the
// shipped default config: what we show users must be valid.
func TestREADMEConfigs(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```uci\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```uci block")
	}
	for i, b := range blocks {
		if _, warns, errs := openwrt.ParseConfig("README.md block "+string(rune('1'+i)), b[1]); len(errs)+len(warns) > 0 {
			t.Errorf("README block %d: %v %v", i+1, errs, warns)
		}
	}
}

// TestPackageDocs: every package documents itself (docs/architecture.md#house-rules, rule 8).
func TestPackageDocs(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "dist" {
			if path != "." {
				return filepath.SkipDir
			}
		}
		pkgs, err := parser.ParseDir(token.NewFileSet(), path, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			return err
		}
		for name, p := range pkgs {
			documented := false
			for _, f := range p.Files {
				documented = documented || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
			}
			if !documented {
				t.Errorf("package %s (%s) has no package comment", name, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrossBinaries checks the binaries `make cross` put in $CARPD_DIST:
// static, the right ELF machine and byte order, and each runs `carpd
// version` under qemu-user.
func TestCrossBinaries(t *testing.T) {
	dist := os.Getenv("CARPD_DIST")
	if dist == "" {
		t.Skip("set CARPD_DIST (make cross does)")
	}
	for _, tt := range []struct {
		name  string
		mach  elf.Machine
		order string
		qemu  string
	}{
		{"mips_24kc", elf.EM_MIPS, "BigEndian", "qemu-mips-static"},
		{"mipsel_24kc", elf.EM_MIPS, "LittleEndian", "qemu-mipsel-static"},
		{"arm_cortex-a7_neon-vfpv4", elf.EM_ARM, "LittleEndian", "qemu-arm-static"},
		{"aarch64_cortex-a53", elf.EM_AARCH64, "LittleEndian", "qemu-aarch64-static"},
		{"x86_64", elf.EM_X86_64, "LittleEndian", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dist, "carpd-"+tt.name)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != tt.mach || f.ByteOrder.String() != tt.order {
				t.Fatalf("ELF %v %v, want %v %v", f.Machine, f.ByteOrder, tt.mach, tt.order)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Fatalf("not static: has %v", p.Type)
				}
			}
			fi, _ := os.Stat(path)
			t.Logf("%s: %d bytes", tt.name, fi.Size())
			cmd := exec.Command(path, "version")
			if tt.qemu != "" {
				q, err := exec.LookPath(tt.qemu)
				if err != nil {
					if os.Getenv("CARPD_REQUIRE_QEMU") != "" {
						t.Fatalf("%s not installed (apt-get install qemu-user-static)", tt.qemu)
					}
					t.Skipf("%s not installed", tt.qemu)
				}
				cmd = exec.Command(q, path, "version")
			}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "carpd ") {
				t.Fatalf("carpd version: %v %s", err, out)
			}
		})
	}
}

// TestShellScripts runs shellcheck on every shell script we ship.
func TestShellScripts(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CARPD_REQUIRE_NETNS") != "" {
			t.Fatal("shellcheck is not installed (apt-get install shellcheck)")
		}
		t.Skip("shellcheck is not installed")
	}
	scripts, _ := filepath.Glob("package/carpd/files/hotplug.d/*")
	more, _ := filepath.Glob("scripts/*.sh")
	scripts = append(append(scripts, more...), "package/carpd/files/carpd.init", ".ci/run")
	if len(scripts) < 4 {
		t.Fatalf("found only %v", scripts)
	}
	for _, s := range scripts {
		// The shell comes from each script's shebang or directive.
		if out, err := exec.Command(sc, s).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s:\n%s", s, out)
		}
	}
}

// TestDefaultConfig: the shipped /etc/config/carpd parses and validates.
func TestDefaultConfig(t *testing.T) {
	cfg, warns, errs := openwrt.LoadConfig("package/carpd/files/carpd.config")
	if len(errs) > 0 || len(warns) > 0 {
		t.Fatalf("default config: %v %v", errs, warns)
	}
	if len(cfg.VHIDs) != 0 {
		t.Fatalf("the shipped example vhid must be disabled, got %d enabled", len(cfg.VHIDs))
	}
}

// TestDemoteArgs: flags and the relative demotion in any order; a
// negative number is the demotion, never a flag; a flag's value is never
// the demotion.
func TestDemoteArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		vhid   uint
		iface  string
		sock   string
		by     int
		group  string
		source string
		set    int // -1: not set
		ttl    int
		err    bool
	}{
		{args: []string{"5"}, by: 5},
		{args: []string{"-3"}, by: -3},
		{args: []string{"--vhid", "5", "10"}, vhid: 5, by: 10},
		{args: []string{"--vhid", "5", "-3"}, vhid: 5, by: -3},
		{args: []string{"-3", "--vhid", "5"}, vhid: 5, by: -3},
		{args: []string{"--vhid=5", "-3"}, vhid: 5, by: -3},
		{args: []string{"-vhid", "7", "--interface", "br-lan", "1"}, vhid: 7, iface: "br-lan", by: 1},
		{args: []string{"--interface", "eth0", "-20"}, iface: "eth0", by: -20},
		{args: []string{"-s", "/tmp/x.sock", "--vhid", "2", "-1"}, sock: "/tmp/x.sock", vhid: 2, by: -1},
		{args: []string{"--", "-4"}, by: -4},
		{args: []string{"9223372036854775807"}, by: math.MaxInt64},
		{args: []string{"-9223372036854775808"}, by: math.MinInt64},
		{args: []string{"99999999999999999999"}, by: math.MaxInt64},
		{args: []string{"-99999999999999999999"}, by: math.MinInt64},
		{args: []string{"--vhid", "5"}, err: true},           // the 5 is the vhid: no demotion given
		{args: []string{"--vhid", "5", "1", "2"}, err: true}, // two demotions
		{args: []string{"x"}, err: true},
		{args: []string{"--vhid"}, err: true},
		{args: []string{"--bogus", "1"}, err: true},
		{args: []string{"--vhid", "256", "1"}, err: true},
		{args: []string{"1.5"}, err: true},
		{args: []string{"--vhid", "5", "x", "1"}, err: true},
		{args: []string{"-h"}, err: true},
		// Groups, relative and absolute.
		{args: []string{"-g", "wan", "2"}, group: "wan", by: 2},
		{args: []string{"-2", "--group", "wan"}, group: "wan", by: -2},
		{args: []string{"-g", "wan", "--source", "mwan3", "--set", "10"}, group: "wan", source: "mwan3", set: 10},
		{args: []string{"--source", "bird", "--set", "0", "--ttl", "60"}, source: "bird", set: 0, ttl: 60},
		{args: []string{"-g", "wan", "--source=x", "--set=255", "--ttl=86400"}, group: "wan", source: "x", set: 255, ttl: 86400},
		{args: []string{"--source", "x"}, err: true},                    // no value
		{args: []string{"--set", "3"}, err: true},                       // no source
		{args: []string{"--source", "x", "--set", "-1"}, err: true},     // below 0
		{args: []string{"--source", "x", "--set", "256"}, err: true},    // above 255
		{args: []string{"--source", "x", "--set", "two"}, err: true},    // not a number
		{args: []string{"--source", "x", "--set", "1", "3"}, err: true}, // and a relative N
		{args: []string{"--source", "x", "--set", "1", "--vhid", "1"}, err: true},
		{args: []string{"--source", "x", "--set", "1", "--ttl", "86401"}, err: true},
		{args: []string{"--source", "x", "--set", "1", "--ttl", "-1"}, err: true},
		{args: []string{"--ttl", "5", "1"}, err: true}, // a ttl for a relative demotion
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.set == 0 && tc.source == "" {
				tc.set = -1
			}
			sock, req, err := parseDemoteArgs(tc.args, io.Discard)
			if tc.err {
				if err == nil {
					t.Fatalf("accepted: %+v", req)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.sock
			if want == "" {
				want = config.DefaultControlSocket
			}
			set := -1
			if req.Set != nil {
				set = *req.Set
			}
			if uint(req.VHID) != tc.vhid || req.Interface != tc.iface || req.By != tc.by || sock != want || req.Group != tc.group ||
				req.Source != tc.source || set != tc.set || req.TTL != tc.ttl || req.Method != "demote" {
				t.Fatalf("sent %+v (set %d) to %s, want %+v", req, set, sock, tc)
			}
		})
	}
}

// TestDemoteCLI: the demote command sends what it parsed (a fake control
// socket records the request), and refuses what it cannot parse.
func TestDemoteCLI(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan daemon.Request, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req daemon.Request
			_ = json.NewDecoder(c).Decode(&req)
			got <- req
			_ = json.NewEncoder(c).Encode(daemon.Response{OK: true})
			c.Close()
		}
	}()
	if code, _, errs := runCLI("demote", "-s", sock, "--vhid", "5", "-3"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if r := <-got; r.Method != "demote" || r.VHID != 5 || r.By != -3 || r.Interface != "" {
		t.Fatalf("sent %+v", r)
	}
	if code, _, errs := runCLI("demote", "-s", sock, "--interface", "eth0", "10"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if r := <-got; r.VHID != 0 || r.By != 10 || r.Interface != "eth0" {
		t.Fatalf("sent %+v", r)
	}
	if code, _, errs := runCLI("demote", "-s", sock, "--vhid", "5"); code != 2 || !strings.Contains(errs, "usage") {
		t.Fatalf("demote without a number: exit %d: %s", code, errs)
	}
	if code, _, errs := runCLI("demote", "-s", sock, "-g", "wan", "--source", "mwan3", "--set", "3", "--ttl", "30"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if r := <-got; r.Group != "wan" || r.Source != "mwan3" || r.Set == nil || *r.Set != 3 || r.TTL != 30 || r.By != 0 {
		t.Fatalf("sent %+v", r)
	}
	if code, _, errs := runCLI("demote", "-s", sock, "--source", "x", "--set", "300"); code != 2 || !strings.Contains(errs, "want 0 to 255") {
		t.Fatalf("--set 300: exit %d: %s", code, errs)
	}
}

// TestWriteTable: the status table is laid out exactly as text/tabwriter
// (minwidth 0, tabwidth 4, padding 2, padchar ' ') lays it out.
func TestWriteTable(t *testing.T) {
	for _, rows := range [][][]string{
		{{"INTERFACE", "VHID", "STATE", "DROPPED (csum/hmac/ttl/ver/own)"}},
		{{"INTERFACE", "VHID", "STATE", "LAST"}, {"br-lan", "1", "MASTER", "0/0/0/0/0"}, {"eth0.100", "255", "BACKUP", "12/3/0/0/1"}},
		{{"A", "B"}, {"", "x"}, {"ünïcode", "y"}, {"a-much-longer-cell-than-the-header", ""}},
	} {
		var want, got bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
		var t2 table
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
			fmt.Fprintln(&t2, strings.Join(r, "\t"))
		}
		tw.Flush()
		t2.flush(&got)
		if got.String() != want.String() {
			t.Errorf("got:\n%s\nwant (tabwriter):\n%s", got.String(), want.String())
		}
	}
}

// TestPrintStatusDrops: `carpd status` shows the replay drops of a vhid and
// the sync refusals by reason (the LuCI fixture carries some of each).
func TestPrintStatusDrops(t *testing.T) {
	b, err := os.ReadFile("internal/luciview/testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printStatus(&out, &st)
	for _, want := range []string{
		"    replayed adverts refused: stale sequence 2, timing rewritten 0, downgraded 0\n",
		"  refused from the peer: local 1, protocol 3, address 0, zone 0, mark 0, state 0, clash 0; timeouts clamped 2\n",
		", oversize 0, peer table full 0; apply errors ",
		"    balanced section lan: ip, cluster MAC 01:00:5e:00:01:01, nodes [1 3], owned 1 (mask 0b1)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "replayed adverts refused"); n != 1 {
		t.Errorf("%d vhids show replay drops, want 1 (only one has any)", n)
	}
}

// TestPrintHeld: a held takeover is the first thing said about a vhid.
func TestPrintHeld(t *testing.T) {
	var out bytes.Buffer
	v := &daemon.VHIDStatus{}
	v.Held = "own tracker wan_ping suspect"
	printDemotion(&out, v)
	if got, want := out.String(), "    takeover held: own tracker wan_ping suspect\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPrintStatusDemotion: `carpd status` says per vhid why it is demoted
// (each source with its group, value, reason and since; the peer's
// demotion next to ours) and lists the trackers.
func TestPrintStatusDemotion(t *testing.T) {
	b, err := os.ReadFile("internal/luciview/testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printStatus(&out, &st)
	hms := func(s string) string {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Local().Format("15:04:05")
	}
	for _, want := range []string{
		"  eth1 vhid 2: 203.0.113.1/24\n    demotion 3, peer advertises 0 (advskew 0); groups carp wan\n",
		"      mwan3 (wan) +2: set with demote --set --ttl 300, since " + hms("2026-05-04T09:58:00Z") + ", expires " + hms("2026-05-04T10:03:00Z") + "\n",
		"      wan_ping (wan) +1: 0 of 1 targets answered for 3 rounds, since " + hms("2026-05-04T09:12:31Z") + "\n",
		"    demotion 0, peer advertises 0 (advskew 100); groups carp\n",
		"  wan_ping (ping, group wan, weight 1): DOWN +1: 0 of 1 targets answered for 3 rounds, since " + hms("2026-05-04T09:12:31Z"),
		"    198.51.100.1: sent 266400, received 263602, rtt 4.2 ms\n",
		"    error: sendto: network is unreachable\n",
		"  lan_up (",
		" (suspect: last round bad): ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
}
