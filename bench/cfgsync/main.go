//go:build linux

// Command cfgsync measures configuration sync (docs/config-sync.md):
// the time from a change of a UCI package on the primary (a new file
// renamed over the old one, as uci commit does) to the run of the
// secondary's reload command, and the bytes on the sync link per change.
//
// The lab: two routers (r1 primary, r2 secondary) on a LAN segment with
// one vhid, and a dedicated sync link; each with its own config dir and
// a reload command that logs the time it ran.
//
//	go build -o /tmp/carpd-bench . && CARPD_BIN=/tmp/carpd-bench go run ./bench/cfgsync -out bench/cfgsync-results.md
//
// It needs root and iproute2. Everything stays inside the lab's
// namespaces, torn down at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/bench/internal/benchhost"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/ubus/json"
)

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "cfgsync: "+format+"\n", a...) }

func main() {
	out := flag.String("out", "", "write the Markdown table here (default stdout)")
	n := flag.Int("changes", 20, "changes to make on the primary")
	gap := flag.Duration("gap", 2*time.Second, "time between changes")
	rules := flag.Int("rules", 100, "firewall rules in the package (its size)")
	flag.Parse()
	if err := run(*out, *n, *gap, *rules); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

type node struct {
	h                 *lab.Host
	dir, sock, relLog string
	p                 *lab.Proc
}

func run(out string, n int, gap time.Duration, rules int) error {
	dir, err := os.MkdirTemp("", "carpd-bench-cfgsync")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	bin, err := benchhost.CarpdBinary(context.Background(), dir, logf)
	if err != nil {
		return err
	}
	l, err := lab.New("cfb")
	if err != nil {
		return err
	}
	defer l.Close()
	lan, err := l.Switch("lan")
	if err != nil {
		return err
	}
	syn, err := l.Switch("sync")
	if err != nil {
		return err
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	var nodes []*node
	for i, role := range []string{"primary", "secondary"} {
		h, err := l.Host(fmt.Sprintf("r%d", i+1))
		if err != nil {
			return err
		}
		if _, err := l.Attach(h, lan, "lan", fmt.Sprintf("10.0.1.%d/24", i+2)); err != nil {
			return err
		}
		if _, err := l.Attach(h, syn, "sync", fmt.Sprintf("10.0.3.%d/24", i+2)); err != nil {
			return err
		}
		nd := &node{h: h, dir: filepath.Join(dir, h.Name)}
		nd.sock, nd.relLog = filepath.Join(nd.dir, "carpd.sock"), filepath.Join(nd.dir, "reload.log")
		if err := os.MkdirAll(filepath.Join(nd.dir, "config"), 0o755); err != nil {
			return err
		}
		script := filepath.Join(nd.dir, "reload.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\ndate +%s.%N >> "+nd.relLog+"\n"), 0o755); err != nil {
			return err
		}
		conf := fmt.Sprintf("config carpd 'global'\n\toption control_socket '%s'\n\toption hotplug_call ''\n\toption ubus_socket ''\n\n"+
			"config vhid 'lan'\n\toption interface 'lan'\n\toption vhid '1'\n\toption password 'x'\n\toption advskew '%d'\n\tlist address '10.0.1.1/24'\n\n"+
			"config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n"+
			"\toption config_role '%s'\n\tlist config 'firewall'\n\toption config_dir '%s'\n\toption reload_command '%s'\n",
			nd.sock, 10+90*i, 3-i, key, role, filepath.Join(nd.dir, "config"), script)
		cf := filepath.Join(nd.dir, "carpd.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return err
		}
		if nd.p, err = h.StartWith(lab.StartOptions{LogFile: filepath.Join(nd.dir, "carpd.log")}, bin, "-c", cf); err != nil {
			return err
		}
		defer func(p *lab.Proc) { _ = p.Signal(syscall.SIGTERM); _ = p.Wait(5 * time.Second); p.Kill() }(nd.p)
		nodes = append(nodes, nd)
	}
	pri, sec := nodes[0], nodes[1]
	fw := func(v int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "config defaults\n\toption input 'ACCEPT'\n\toption forward 'REJECT'\n\toption version '%d'\n", v)
		for i := range rules {
			fmt.Fprintf(&b, "\nconfig rule\n\toption name 'rule-%d'\n\toption src 'wan'\n\toption dest_port '%d'\n\toption target 'ACCEPT'\n", i, 1000+i)
		}
		return b.String()
	}
	write := func(v int) time.Time {
		p := filepath.Join(pri.dir, "config", "firewall")
		_ = os.WriteFile(p+".new", []byte(fw(v)), 0o644)
		t := time.Now()
		_ = os.Rename(p+".new", p)
		return t
	}
	reloads := func() []float64 {
		b, _ := os.ReadFile(sec.relLog)
		var out []float64
		for _, l := range strings.Fields(string(b)) {
			if f, err := strconv.ParseFloat(l, 64); err == nil {
				out = append(out, f)
			}
		}
		return out
	}
	wait := func(d time.Duration, cond func() bool) bool {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return true
			}
		}
		return false
	}
	linkBytes := func() uint64 {
		raw, err := daemon.Call(pri.sock, daemon.Request{Method: "status"})
		if err != nil {
			return 0
		}
		var st daemon.Status
		_ = json.Unmarshal(raw, &st)
		return st.Sync.Counters.BytesSent + st.Sync.Counters.BytesReceived
	}
	write(0)
	if !wait(30*time.Second, func() bool { return len(reloads()) == 1 }) {
		return fmt.Errorf("the first sync did not happen in 30 s; logs in %s", dir)
	}
	logf("first sync done; %d changes of a %d-byte package", n, len(fw(1)))
	time.Sleep(2 * time.Second)
	idle0, idleT := linkBytes(), time.Now()
	time.Sleep(5 * time.Second)
	idleRate := float64(linkBytes()-idle0) / time.Since(idleT).Seconds()
	var lat []time.Duration
	var bytes []float64
	for v := 1; v <= n; v++ {
		b0, t0 := linkBytes(), time.Now()
		at := write(v)
		if !wait(10*time.Second, func() bool { return len(reloads()) == v+1 }) {
			return fmt.Errorf("change %d: no reload within 10 s", v)
		}
		r := reloads()[v]
		lat = append(lat, time.Duration((r-float64(at.UnixNano())/1e9)*1e9))
		time.Sleep(gap)
		bytes = append(bytes, float64(linkBytes()-b0)-idleRate*time.Since(t0).Seconds())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Float64s(bytes)
	res := fmt.Sprintf("| Figure | min | median | max |\n|---|---|---|---|\n"+
		"| config change on the primary → the secondary's reload command ran (%d changes) | %v | %v | %v |\n"+
		"| bytes on the sync link per change of a %d-byte package (IP layer, idle chatter subtracted) | %.0f | %.0f | %.0f |\n",
		n, lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
		len(fw(1)), bytes[0], bytes[len(bytes)/2], bytes[len(bytes)-1])
	if out == "" {
		fmt.Print(res)
		return nil
	}
	return os.WriteFile(out, []byte(res), 0o644)
}
