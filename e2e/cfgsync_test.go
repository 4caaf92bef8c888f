package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/cfgsync"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/ubus/json"
)

const firewallV1 = `config defaults
	option input 'ACCEPT'
	option output 'ACCEPT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'
`

// cfgRouter is a router's config dir and the log its reload command
// writes.
type cfgRouter struct {
	dir, reloadLog string
}

// cfgConf adds configuration sync to a router's config: role, its own
// config dir with the package firewall, and a reload command that logs
// its arguments.
func cfgConf(t *testing.T, f *firewallLab, i int, role string) (string, cfgRouter) {
	t.Helper()
	r := f.routers[i]
	cr := cfgRouter{dir: filepath.Join(r.dir, "config"), reloadLog: filepath.Join(r.dir, "reload.log")}
	if err := os.MkdirAll(cr.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(r.dir, "reload.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+cr.reloadLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := f.routerConf(i, true) + fmt.Sprintf("\toption config_role '%s'\n\tlist config 'firewall'\n\tlist config 'dhcp'\n"+
		"\toption config_dir '%s'\n\toption reload_command '%s'\n", role, cr.dir, script)
	return conf, cr
}

// writeUCI replaces a file the way uci commit does: a new file renamed
// over the old one.
func writeUCI(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func configStatus(c *cluster, r *router) *daemon.ConfigSyncStatus {
	st := c.status(r)
	return st.Sync.Config
}

func pkgStatus(s *daemon.ConfigSyncStatus, name string) daemon.ConfigObjectStatus {
	if s != nil {
		for _, p := range s.Packages {
			if p.Name == name {
				return p
			}
		}
	}
	return daemon.ConfigObjectStatus{}
}

func configSync(t *testing.T, r *router, dryRun, force bool) daemon.ConfigSyncResult {
	t.Helper()
	raw, err := daemon.Call(r.sock(), daemon.Request{Method: "config_sync", DryRun: dryRun, Force: force})
	if err != nil {
		t.Fatal(err)
	}
	var res daemon.ConfigSyncResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestConfigSync: a UCI package changed on the primary is on the
// secondary byte for byte within 5 s, and its reload command runs; a
// package edited on the secondary is kept and reported as a conflict
// until config-sync --force, and --dry-run shows the diff.
func TestConfigSync(t *testing.T) {
	f := newFirewallLab(t)
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]
	conf1, p := cfgConf(t, f, 0, "primary")
	conf2, s := cfgConf(t, f, 1, "secondary")
	fw1, fw2 := filepath.Join(p.dir, "firewall"), filepath.Join(s.dir, "firewall")
	writeUCI(t, fw1, firewallV1)
	// carpd's own package is never synced (listed or not).
	writeUCI(t, filepath.Join(p.dir, "carpd"), "config carpd 'global'\n")
	c.start(r1, conf1)
	c.start(r2, conf2)

	// At start: the secondary has no copy, so it takes the primary's.
	c.waitFor(15*time.Second, "firewall on the secondary", func() bool { return readFile(fw2) == firewallV1 })
	c.waitFor(5*time.Second, "the first reload", func() bool { return strings.TrimSpace(readFile(s.reloadLog)) == "firewall" })

	// A change on the primary: on the secondary within 5 s, byte for byte.
	v2 := firewallV1 + "\nconfig zone\n\toption name 'wan'\n\toption masq '1'\n"
	changed := time.Now()
	writeUCI(t, fw1, v2)
	c.waitFor(5*time.Second, "the change on the secondary", func() bool { return readFile(fw2) == v2 })
	took := time.Since(changed)
	c.waitFor(5*time.Second, "the second reload", func() bool { return strings.Count(readFile(s.reloadLog), "firewall") == 2 })
	t.Logf("config change on the primary to the secondary's copy: %v", took.Round(time.Millisecond))
	if st, err := os.Stat(fw2); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the written file: %v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "carpd")); err == nil {
		t.Error("carpd's own package reached the secondary")
	}
	h2 := cfgsync.Hex(cfgsync.Sum([]byte(v2)))
	c.waitFor(15*time.Second, "both sides' hashes in status", func() bool {
		a, b := pkgStatus(configStatus(c, r1), "firewall"), pkgStatus(configStatus(c, r2), "firewall")
		return a.LocalHash == h2 && a.PeerHash == h2 && b.LocalHash == h2 && b.PeerHash == h2 && !a.LastSync.IsZero() && !b.LastSync.IsZero()
	})
	if st := configStatus(c, r2); st.Role != "secondary" || pkgStatus(st, "firewall").Kind != "uci" {
		t.Errorf("secondary status %+v", st)
	}

	// The secondary's copy edited there, then a change on the primary: the
	// edit stays, the conflict is reported on both sides.
	edited := v2 + "# a local edit\n"
	writeUCI(t, fw2, edited)
	v3 := strings.Replace(v2, "option forward 'REJECT'", "option forward 'DROP'", 1)
	writeUCI(t, fw1, v3)
	c.waitFor(10*time.Second, "the conflict on both sides", func() bool {
		return pkgStatus(configStatus(c, r2), "firewall").Conflict != "" && pkgStatus(configStatus(c, r1), "firewall").Conflict != ""
	})
	time.Sleep(2 * time.Second)
	if got := readFile(fw2); got != edited {
		t.Fatalf("the secondary's edited copy was replaced:\n%s", got)
	}
	if n := strings.Count(readFile(s.reloadLog), "firewall"); n != 2 {
		t.Errorf("%d reloads, want 2 (none for the conflict)", n)
	}
	// --dry-run shows the diff and changes nothing.
	res := configSync(t, r2, true, false)
	for _, want := range []string{"-\toption forward 'REJECT'", "+\toption forward 'DROP'", "-# a local edit"} {
		if !strings.Contains(res.Diff, want) {
			t.Errorf("dry-run diff lacks %q:\n%s", want, res.Diff)
		}
	}
	if len(res.Conflicts) != 1 || readFile(fw2) != edited {
		t.Errorf("dry-run: %+v", res)
	}
	out := c.run(r2.host, carpdBin, "config-sync", "-s", r2.sock(), "--dry-run")
	if !strings.Contains(out, "+\toption forward 'DROP'") {
		t.Errorf("carpd config-sync --dry-run:\n%s", out)
	}
	// --force takes the primary's version.
	out = c.run(r2.host, carpdBin, "config-sync", "-s", r2.sock(), "--force")
	if !strings.Contains(out, "written: firewall") {
		t.Errorf("carpd config-sync --force:\n%s", out)
	}
	if got := readFile(fw2); got != v3 {
		t.Fatalf("after --force:\n%s", got)
	}
	c.waitFor(5*time.Second, "the reload after --force", func() bool { return strings.Count(readFile(s.reloadLog), "firewall") == 3 })
	c.waitFor(10*time.Second, "the conflict cleared on both sides", func() bool {
		return pkgStatus(configStatus(c, r2), "firewall").Conflict == "" && pkgStatus(configStatus(c, r1), "firewall").Conflict == ""
	})
	// The next change goes through again.
	v4 := v3 + "\nconfig rule\n\toption name 'Allow-Ping'\n"
	writeUCI(t, fw1, v4)
	c.waitFor(5*time.Second, "the next change", func() bool { return readFile(fw2) == v4 })
}

// TestConfigSyncHostilePeer: a peer with the key sends configuration
// records outside the secondary's list, carpd's own package, an object
// over the size limit, a package that does not parse as UCI and chunks
// that do not make their hash: each is refused and counted, nothing is
// written and nothing reloaded.
func TestConfigSyncHostilePeer(t *testing.T) {
	f := newFirewallLab(t)
	c := f.cluster
	r2 := c.routers[1]
	conf2, s := cfgConf(t, f, 1, "secondary")
	fw2 := filepath.Join(s.dir, "firewall")
	writeUCI(t, fw2, firewallV1)
	h := startHostilePeer(t, f)
	c.start(r2, conf2)
	c.waitFor(15*time.Second, "the hostile session", func() bool { return h.e.Status().PeerUp && c.status(r2).Sync.PeerUp })

	send := func(recs ...wire.Record) {
		t.Helper()
		if !h.e.SendConfig(recs) {
			t.Fatal("SendConfig: queue full")
		}
	}
	send(cfgsync.Chunks("network", false, false, []byte("config interface 'lan'\n"))...)                                                   // not listed
	send(cfgsync.Chunks("carpd", false, true, []byte("config sync 'sync'\n\toption key 'x'\n"))...)                                        // carpd's own
	send(cfgsync.Chunks("/etc/passwd", true, true, []byte("root::0:0::/root:/bin/sh\n"))...)                                               // a file not listed
	send(cfgsync.Chunks("../firewall", false, false, []byte("config x\n"))...)                                                             // a path
	send(wire.Record{Type: wire.RecordConfig, Config: &wire.ConfigChunk{Name: "firewall", Total: cfgsync.MaxSize + 1, Data: []byte("x")}}) // too large
	send(cfgsync.Chunks("firewall", false, true, []byte("config 'unterminated\n"))...)                                                     // not UCI
	bad := cfgsync.Chunks("dhcp", false, false, []byte("config dnsmasq\n"))
	bad[0].Config.Data = []byte("config dnsmasX\n")
	send(bad...) // does not make its hash

	want := map[string]uint64{cfgsync.ReasonNotListed: 3, cfgsync.ReasonOwn: 1, cfgsync.ReasonTooLarge: 1, cfgsync.ReasonUCI: 1, cfgsync.ReasonHash: 1}
	var got map[string]uint64
	c.waitFor(10*time.Second, "every record refused and counted", func() bool {
		st := configStatus(c, r2)
		if st == nil {
			return false
		}
		got = st.Refused
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	if st := configStatus(c, r2); fmt.Sprint(st.Refused) != fmt.Sprint(want) {
		t.Errorf("refused %v, want %v", st.Refused, want)
	}
	if got := readFile(fw2); got != firewallV1 {
		t.Errorf("firewall changed:\n%s", got)
	}
	for _, name := range []string{"network", "carpd", "dhcp"} {
		if _, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
			t.Errorf("%s was written", name)
		}
	}
	if _, err := os.Stat(s.reloadLog); err == nil {
		t.Errorf("the reload command ran: %q", readFile(s.reloadLog))
	}
	// A well-formed update of a listed package still goes through (the
	// package was there before any sync: a conflict until --force).
	good := firewallV1 + "# from the peer\n"
	send(cfgsync.Chunks("firewall", false, false, []byte(good))...)
	c.waitFor(5*time.Second, "the conflict", func() bool { return pkgStatus(configStatus(c, r2), "firewall").Conflict != "" })
	if !bytes.Equal([]byte(readFile(fw2)), []byte(firewallV1)) {
		t.Error("a copy that was there before any sync was replaced without --force")
	}
}
