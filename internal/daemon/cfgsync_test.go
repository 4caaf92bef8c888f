package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/cfgsync"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/logx"
)

// secondary is a cfgSyncer with the role secondary on a temporary config
// dir, without an engine (answers go nowhere).
func secondary(t *testing.T) (*cfgSyncer, string) {
	dir := t.TempDir()
	c := newCfgSyncer(logx.New(logx.DiscardHandler), filepath.Join(dir, "carpd.state"))
	c.configure(config.ConfigSync{Role: config.RoleSecondary, Packages: []string{"firewall", "dhcp"},
		Files: []string{filepath.Join(dir, "hosts")}, Dir: dir, ReloadCommand: config.NoReload}, config.Sync{Enabled: true})
	return c, dir
}

func (c *cfgSyncer) feed(name string, file, force bool, data string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range cfgsync.Chunks(name, file, force, []byte(data)) {
		c.record(&r, time.Now())
	}
	c.publish()
}

func TestCfgSyncSecondary(t *testing.T) {
	c, dir := secondary(t)
	fw := filepath.Join(dir, "firewall")
	// A new package: written (0644), reload queued.
	c.feed("firewall", false, false, "config zone\n")
	if got, _ := os.ReadFile(fw); string(got) != "config zone\n" {
		t.Fatalf("firewall %q", got)
	}
	if st, _ := os.Stat(fw); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if len(c.reload) != 1 {
		t.Errorf("reload %v", c.reload)
	}
	// The mode of the file it replaces is kept.
	if err := os.Chmod(fw, 0o600); err != nil {
		t.Fatal(err)
	}
	c.feed("firewall", false, false, "config zone\n\toption name 'lan'\n")
	if st, _ := os.Stat(fw); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after an update %v", st.Mode())
	}
	// Edited here: a conflict, kept; --dry-run shows it, --force writes it.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(fw, []byte("# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.feed("firewall", false, false, "config zone\n\toption name 'wan'\n")
	if got, _ := os.ReadFile(fw); string(got) != "# mine\n" {
		t.Fatalf("a local edit replaced: %q", got)
	}
	if s := c.status(); s.Packages[2].Conflict == "" || s.Packages[2].Name != "firewall" {
		t.Fatalf("status %+v", s.Packages)
	}
	res, err := c.request(context.Background(), true, false)
	if err != nil || !strings.Contains(res.Diff, "-# mine\n") || !strings.Contains(res.Diff, "+\toption name 'wan'\n") {
		t.Fatalf("dry run %+v %v", res, err)
	}
	res, err = c.request(context.Background(), false, true)
	if got, _ := os.ReadFile(fw); err != nil || string(got) != "config zone\n\toption name 'wan'\n" || len(res.Written) != 1 {
		t.Fatalf("force: %+v %v %q", res, err, got)
	}
	// The primary's force flag overrides a local edit too.
	time.Sleep(10 * time.Millisecond)
	_ = os.WriteFile(fw, []byte("# mine again\n"), 0o600)
	c.feed("firewall", false, true, "config zone\n\toption name 'forced'\n")
	if got, _ := os.ReadFile(fw); string(got) != "config zone\n\toption name 'forced'\n" {
		t.Fatalf("forced by the primary: %q", got)
	}
	// The last written hash survives a restart.
	if c2 := newCfgSyncer(logx.New(logx.DiscardHandler), filepath.Join(dir, "carpd.state")); c2.last["firewall"] != cfgsync.Sum([]byte("config zone\n\toption name 'forced'\n")) {
		t.Error("the state file does not hold the last hash")
	}
}

func TestCfgSyncRefused(t *testing.T) {
	c, dir := secondary(t)
	// A symbolic link where dhcp would go: never written through.
	target := filepath.Join(dir, "elsewhere")
	_ = os.WriteFile(target, []byte("x"), 0o644)
	if err := os.Symlink(target, filepath.Join(dir, "dhcp")); err != nil {
		t.Fatal(err)
	}
	c.feed("dhcp", false, false, "config dnsmasq\n")
	c.feed("network", false, false, "config interface 'lan'\n")
	c.feed("carpd", false, false, "config carpd\n")
	c.feed("firewall", true, false, "config zone\n") // listed as a package, sent as a file
	c.feed("/etc/shadow", true, false, "root::0:0\n")
	c.feed("firewall", false, false, "config 'open\n")
	c.mu.Lock()
	c.record(nil, time.Now())
	c.record(&wire.Record{Type: wire.RecordConfig, Config: &wire.ConfigChunk{Name: "firewall", Total: cfgsync.MaxSize + 1, Data: []byte("x")}}, time.Now())
	c.publish()
	c.mu.Unlock()
	want := map[string]uint64{"symlink": 1, "not_listed": 3, "own_config": 1, "bad_uci": 1, "malformed": 1, "too_large": 1}
	if got := c.status().Refused; len(got) != len(want) {
		t.Errorf("refused %v, want %v", got, want)
	} else {
		for k, n := range want {
			if got[k] != n {
				t.Errorf("refused %v, want %v", got, want)
			}
		}
	}
	if got, _ := os.ReadFile(target); string(got) != "x" {
		t.Errorf("written through the link: %q", got)
	}
	for _, n := range []string{"network", "carpd", "firewall"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s written", n)
		}
	}
	// A primary refuses records too.
	c.configure(config.ConfigSync{Role: config.RolePrimary, Packages: []string{"firewall"}, Dir: dir}, config.Sync{Enabled: true})
	c.feed("firewall", false, false, "config zone\n")
	if c.status().Refused["role"] != 1 {
		t.Errorf("primary: %v", c.status().Refused)
	}
}

// TestCfgSyncSameSizeEdit: an edit that keeps the size and the time
// stamp (within the clock's tick) is still seen before a write.
func TestCfgSyncSameSizeEdit(t *testing.T) {
	c, dir := secondary(t)
	fw := filepath.Join(dir, "firewall")
	c.feed("firewall", false, false, "config zone 'a'\n")
	c.mu.Lock()
	c.tick(time.Now()) // the syncer has looked at it since
	c.mu.Unlock()
	st, _ := os.Stat(fw)
	if err := os.WriteFile(fw, []byte("config zone 'b'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(fw, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	c.feed("firewall", false, false, "config zone 'c'\n")
	if got, _ := os.ReadFile(fw); string(got) != "config zone 'b'\n" {
		t.Fatalf("the edit was overwritten: %q", got)
	}
}

// TestCfgSyncReload: a reload's configuration reaches the running syncer
// (setConfig, from the daemon's loop, never waits for it).
func TestCfgSyncReload(t *testing.T) {
	c, dir := secondary(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.run(ctx) }()
	defer func() { cancel(); <-done }()
	c.mu.Lock() // the syncer busy: setConfig must still return at once
	c.setConfig(config.ConfigSync{Role: config.RolePrimary, Packages: []string{"network"}, Dir: dir}, config.Sync{Enabled: true})
	c.mu.Unlock()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if s := c.status(); s != nil && s.Role == "primary" && len(s.Packages) == 1 && s.Packages[0].Name == "network" {
			return
		}
	}
	t.Fatalf("status %+v", c.status())
}
