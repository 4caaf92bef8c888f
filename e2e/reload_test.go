package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

// TestReloadRemovesMastersConcurrently: a reload that removes seven master
// vhids lets them bow out all at once (each keeps its VIP for up to
// carp.BowOutLinger, 1 s, waiting to hear a new master: here there is
// none), and status answers at once all the while. Before, the daemon
// stopped them one after the other holding its state: status stalled
// about seven seconds.
func TestReloadRemovesMastersConcurrently(t *testing.T) {
	c := newCluster(t, 1)
	r1 := c.routers[0]
	const n = 8
	vs := make([]vhidConf, n)
	for i := range vs {
		vs[i] = vhidConf{iface: "lan", vhid: i + 1, advbase: 1, password: "p", addrs: []string{fmt.Sprintf("10.0.1.%d/24", 10+i)}}
	}
	c.start(r1, confText(false, vs...))
	c.waitFor(10*time.Second, "every vhid MASTER", func() bool {
		st := c.status(r1)
		masters := 0
		for _, v := range st.VHIDs {
			if v.State == "MASTER" {
				masters++
			}
		}
		return masters == n
	})
	before := c.status(r1).VHIDs[0].Counters.Transitions
	conf := strings.ReplaceAll(confText(false, vs[0]), "@SOCK@", r1.sock())
	if err := os.WriteFile(r1.conf(), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r1.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var slowest time.Duration
	var applied, gone time.Duration
	calls := 0
	for time.Since(start) < 6*time.Second && (gone == 0 || time.Since(start) < 2*time.Second) {
		t0 := time.Now()
		_, err := daemon.Call(r1.sock(), daemon.Request{Method: "status"})
		lat := time.Since(t0)
		if err != nil {
			t.Fatalf("status during the reload: %v", err)
		}
		calls++
		slowest = max(slowest, lat)
		if applied == 0 && len(c.status(r1).VHIDs) == 1 {
			applied = time.Since(start)
		}
		if applied != 0 && gone == 0 {
			left := 0
			for _, v := range vs[1:] {
				if c.hasAddr(r1, "lan", v.addrs[0]) {
					left++
				}
			}
			if left == 0 {
				gone = time.Since(start)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d status calls, slowest %v; reload applied after %v, the removed VIPs gone after %v", calls, slowest, applied, gone)
	if applied == 0 || gone == 0 {
		t.Fatalf("reload applied after %v, VIPs gone after %v", applied, gone)
	}
	if slowest > time.Second {
		t.Errorf("status took %v during the reload", slowest)
	}
	// Seven bow-outs one after the other take seven seconds.
	if gone > 3*time.Second {
		t.Errorf("the removed masters took %v to bow out", gone)
	}
	st := c.status(r1)
	if len(st.VHIDs) != 1 || st.VHIDs[0].State != "MASTER" || st.VHIDs[0].Counters.Transitions != before || st.Reloads != 1 {
		t.Fatalf("after the reload: %+v", st.VHIDs)
	}
	c.onlyHolder(r1, "lan", vs[0].addrs[0])
}

// TestReloadReaddsBowingOutVHID: a reload removes the master's vhid and the
// next one, while it is still bowing out, adds it back. The new vhost waits
// for the old one to be gone before it takes the vhid on that interface
// (else the old one's exit would unhook the new one from the interface:
// deaf, it would become a second master). It comes back as BACKUP hearing
// the peer that took over.
func TestReloadReaddsBowingOutVHID(t *testing.T) {
	c, r1, r2 := twoRouters(t, false)
	write := func(conf string) {
		t.Helper()
		if err := os.WriteFile(r1.conf(), []byte(strings.ReplaceAll(conf, "@SOCK@", r1.sock())), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r1.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	other := vhidConf{iface: "lan", vhid: 9, advbase: 1, password: "o", addrs: []string{"10.0.1.99/24"}}
	write(confText(false, other))
	c.waitFor(2*time.Second, "vhid 1 removed from r1", func() bool { return c.state(r1, "lan", 1) == "" })
	write(confText(false, lanVHID(0), other))
	c.waitFor(2*time.Second, "vhid 1 back on r1", func() bool { return c.state(r1, "lan", 1) != "" })
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	c.waitHearing(r1, "lan", 1, 3*time.Second)
	time.Sleep(4 * time.Second) // > master-down: a deaf r1 would be MASTER by now
	if s := c.state(r1, "lan", 1); s != "BACKUP" {
		t.Fatalf("r1 vhid 1 is %s after coming back", s)
	}
	c.onlyHolder(r2, "lan", vip4)
}
