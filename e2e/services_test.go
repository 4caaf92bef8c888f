package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dnsmasqScript is an init script in the style of /etc/init.d: it starts
// Debian's dnsmasq as a DHCP server on the lan (no DNS), with its PID file
// and leases in DIR, and logs each action to DIR/actions.
const dnsmasqScript = `#!/bin/sh
D=@DIR@
echo "$1" >> $D/actions
running() { [ -f $D/dnsmasq.pid ] && kill -0 "$(cat $D/dnsmasq.pid)" 2>/dev/null; }
case "$1" in
start)
	running && exit 0
	exec dnsmasq --conf-file=/dev/null --port=0 --user=root --group=root --interface=lan --bind-interfaces \
		--dhcp-range=10.0.1.50,10.0.1.60,1h --dhcp-leasefile=$D/leases --pid-file=$D/dnsmasq.pid
	;;
stop)
	if running; then kill "$(cat $D/dnsmasq.pid)"; fi
	rm -f $D/dnsmasq.pid
	;;
*)
	exit 3
	;;
esac
`

// serviceRouter sets r up to run dnsmasq through its own init script and
// returns the config text that makes carpd follow it.
func serviceRouter(t *testing.T, r *router, skew int) string {
	t.Helper()
	script := filepath.Join(r.dir, "dnsmasq.init")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(dnsmasqScript, "@DIR@", r.dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pid := dnsmasqPID(r); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return confText(false, lanVHID(skew)) + fmt.Sprintf(`config service 'dhcp'
	option name 'dnsmasq'
	list vhid 'v0'
	option backend 'initd'
	option initscript '%s'
	option timeout '10'
`, script)
}

// dnsmasqPID returns the PID of r's running dnsmasq, 0 when none runs.
func dnsmasqPID(r *router) int {
	b, err := os.ReadFile(filepath.Join(r.dir, "dnsmasq.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !isDnsmasq(pid) {
		return 0
	}
	return pid
}

// isDnsmasq reports whether pid is a live dnsmasq (not a zombie left for
// the test's reaper, not a reused PID).
func isDnsmasq(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if pid <= 0 || err != nil {
		return false
	}
	// pid (comm) state ...
	s := string(st)
	i := strings.LastIndexByte(s, ')')
	return strings.Contains(s, "(dnsmasq)") && i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func actions(r *router) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "actions"))
	return strings.Join(strings.Fields(string(b)), " ")
}

// TestServiceRolesDnsmasq: two routers run Debian's dnsmasq under a
// service role. Only the master's runs (the backup stops its own at
// start); the master crashing makes the backup start its dnsmasq; the
// crashed router, back as backup, stops the dnsmasq it left behind; a
// graceful handover stops the old master's and starts the new one's.
func TestServiceRolesDnsmasq(t *testing.T) {
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq not installed (apt-get install dnsmasq)")
	}
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	conf1, conf2 := serviceRouter(t, r1, 0), serviceRouter(t, r2, 100)
	c.start(r1, conf1)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, conf2)
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "r1's dnsmasq running, r2's stopped", func() bool {
		return dnsmasqPID(r1) > 0 && dnsmasqPID(r2) == 0 && actions(r2) == "stop"
	})
	if a := actions(r1); a != "stop start" {
		t.Errorf("r1's actions %q, want stop (backup at start) then start", a)
	}
	c.waitFor(2*time.Second, "r1's service status", func() bool {
		st := c.status(r1).Services
		return len(st) == 1 && st[0].Role == "master" && st[0].Action == "start" && st[0].Result == "ok" &&
			st[0].Backend == "initd" && st[0].Service == "dnsmasq"
	})
	if st := c.status(r2).Services; len(st) != 1 || st[0].Role != "backup" || st[0].Result != "ok" {
		t.Errorf("r2's services %+v", st)
	}
	old := dnsmasqPID(r1)

	// The master crashes: its dnsmasq is left running (nobody stops it),
	// the backup takes over and starts its own.
	c.crash(r1)
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	c.waitFor(5*time.Second, "r2's dnsmasq running", func() bool { return dnsmasqPID(r2) > 0 })

	// r1 comes back (no preempt): as backup it stops the dnsmasq it left.
	for _, lk := range r1.links {
		if err := lk.SetUp(true); err != nil {
			t.Fatal(err)
		}
	}
	c.start(r1, conf1)
	c.waitHearing(r1, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "r1's old dnsmasq stopped", func() bool { return dnsmasqPID(r1) == 0 && !isDnsmasq(old) })

	// Graceful handover: r2 stops, its dnsmasq with it; r1 starts its own.
	c.stop(r2)
	c.waitFor(2*time.Second, "r2's dnsmasq stopped with r2", func() bool { return dnsmasqPID(r2) == 0 })
	c.waitState(r1, "lan", 1, "MASTER", 2*time.Second)
	c.waitFor(5*time.Second, "r1's dnsmasq running again", func() bool { return dnsmasqPID(r1) > 0 })
	if a := actions(r2); a != "stop start stop" {
		t.Errorf("r2's actions %q, want stop, start, stop", a)
	}
}
