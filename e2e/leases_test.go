package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// TestLeaseSync: two routers with lease sync on, each with Debian's
// dnsmasq on the LAN (started on the master only, as a service role
// would); a client gets a lease from the master; the lease is in the
// backup's file within a second; the master crashes; the backup, now
// master, starts dnsmasq with that file: the client gets its address
// again and a second client a different one.
func TestLeaseSync(t *testing.T) {
	requireTool(t, "dnsmasq")
	requireTool(t, "udhcpc")
	c := newCluster(t, 2, segment{name: "lan", prefix: "10.0.1", n: 1}, segment{name: "sync", prefix: "10.0.3", n: 3})
	var k [32]byte
	_, _ = rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	files := make([]string, 2)
	for i, r := range c.routers {
		files[i] = filepath.Join(r.dir, "dhcp.leases")
		if err := os.WriteFile(files[i], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		conf := confText(true, vhidConf{iface: "lan", vhid: 1, advbase: 1, advskew: []int{0, 100}[i], password: "l", addrs: []string{"10.0.1.1/24"}})
		conf += fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n\toption window '50ms'\n"+
			"\toption lease_sync '1'\n\toption leasefile '%s'\n", 3-i, key, files[i])
		c.start(r, conf)
	}
	r1, r2 := c.routers[0], c.routers[1]
	c.waitState(r1, "lan", 1, "MASTER", 10*time.Second)
	c.waitState(r2, "lan", 1, "BACKUP", 10*time.Second)
	c.waitFor(10*time.Second, "sync session", func() bool { return c.status(r1).Sync.Established && c.status(r2).Sync.Established })

	dnsmasq := func(r *router, file string) *lab.Proc {
		t.Helper()
		p, err := r.host.StartWith(lab.StartOptions{LogFile: filepath.Join(r.dir, "dnsmasq.log")}, "dnsmasq", "-k", "--conf-file=/dev/null",
			"--port=0", "--user=root", "--group=root", "--interface=lan", "--bind-interfaces", "--dhcp-authoritative",
			"--dhcp-range=10.0.1.50,10.0.1.150,255.255.255.0,1h", "--dhcp-option=3,10.0.1.1",
			"--dhcp-leasefile="+file, "--pid-file="+filepath.Join(r.dir, "dnsmasq.pid"), "--log-dhcp")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		return p
	}
	// DHCP clients: hosts on the LAN without an address.
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncase \"$1\" in bound|renew) echo \"$ip\" > \"$OUT\";; esac\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	client := func(name string) *lab.Host {
		h, err := c.lab.Host(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.lab.Attach(h, c.sws["lan"], "lan"); err != nil {
			t.Fatal(err)
		}
		return h
	}
	lease := func(h *lab.Host) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "ip")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if o, err := h.Run(ctx, "env", "OUT="+out, "udhcpc", "-f", "-i", "lan", "-n", "-q", "-t", "8", "-T", "1", "-A", "1", "-s", script); err != nil {
			t.Fatalf("udhcpc on %s: %v\n%s", h.Name, err, o)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	inFile := func(file, ip string) bool {
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[2] == ip {
				return true
			}
		}
		return false
	}

	d1 := dnsmasq(r1, files[0])
	h1, h2 := client("dh1"), client("dh2")
	ip1 := lease(h1)
	if !strings.HasPrefix(ip1, "10.0.1.") {
		t.Fatalf("client 1 got %q", ip1)
	}
	// The master's dnsmasq writes it at once; the backup's file has it
	// within a second of that.
	var onMaster, onBackup time.Time
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && onBackup.IsZero(); time.Sleep(5 * time.Millisecond) {
		if onMaster.IsZero() && inFile(files[0], ip1) {
			onMaster = time.Now()
		}
		if !onMaster.IsZero() && inFile(files[1], ip1) {
			onBackup = time.Now()
		}
	}
	if onMaster.IsZero() || onBackup.IsZero() {
		t.Fatalf("lease %s: in the master's file %v, in the backup's %v", ip1, !onMaster.IsZero(), !onBackup.IsZero())
	}
	if d := onBackup.Sub(onMaster); d > time.Second {
		t.Errorf("lease in the backup's file %v after the master's, over a second", d)
	}
	t.Logf("lease %s in the backup's file %v after the master's", ip1, onBackup.Sub(onMaster).Round(time.Millisecond))
	b1, _ := os.ReadFile(files[0])
	b2, _ := os.ReadFile(files[1])
	if string(b1) != string(b2) {
		t.Errorf("lease files differ:\nmaster: %q\nbackup: %q", b1, b2)
	}

	// A lease outside the networks of the vhids (as a hostile or broken
	// peer could send): refused by the backup, counted, never written.
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "%d 02:00:00:00:00:99 10.99.0.5 stray *\n", time.Now().Add(time.Hour).Unix())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(3*time.Second, "the stray lease refused by r2", func() bool { return c.status(r2).Sync.Leases.Refused["address"] == 1 })
	if inFile(files[1], "10.99.0.5") || !inFile(files[1], ip1) {
		b, _ := os.ReadFile(files[1])
		t.Fatalf("backup's file after a refused lease: %q", b)
	}

	// The master crashes (carpd and its dnsmasq); the backup takes over
	// and starts dnsmasq with the file it holds.
	d1.Kill()
	c.crash(r1)
	c.waitState(r2, "lan", 1, "MASTER", 10*time.Second)
	dnsmasq(r2, files[1])
	if again := lease(h1); again != ip1 {
		t.Fatalf("client 1 got %s from the new master, had %s", again, ip1)
	}
	ip2 := lease(h2)
	if ip2 == ip1 || !strings.HasPrefix(ip2, "10.0.1.") {
		t.Fatalf("client 2 got %q (client 1 has %s)", ip2, ip1)
	}
	st := c.status(r2).Sync.Leases
	if !st.Enabled || st.Received < 2 || st.Written < 1 || len(st.Refused) != 1 {
		t.Errorf("r2 sync.leases %+v", st)
	}
	t.Logf("client 1 kept %s after the failover, client 2 got %s; r2 sync.leases %+v", ip1, ip2, st)
}
