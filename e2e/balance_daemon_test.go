//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// balConf is a router's carpd configuration for the daemon balancing lab:
// one balanced section per side, nodes 1 and 2 on the client side (lan),
// 11 and 12 on the server side (wan); skews[i] is the advskew of the
// i-th node on both sides.
func balConf(sock string, skews [2]int) string {
	s := fmt.Sprintf("config carpd 'global'\n\toption preempt '1'\n\toption log_level 'debug'\n\toption control_socket '%s'\n\n", sock)
	for _, side := range []struct {
		name, dev, vip string
		first          int
	}{{"lan", "lan", "10.10.0.1/24", 1}, {"wan", "wan", "10.20.0.1/24", 11}} {
		s += fmt.Sprintf("config vhid '%s'\n\toption interface '%s'\n\tlist node '%d:%d'\n\tlist node '%d:%d'\n"+
			"\toption balancing 'ip'\n\toption advbase '1'\n\toption password 'secret'\n\tlist address '%s'\n\n",
			side.name, side.dev, side.first, skews[0], side.first+1, skews[1], side.vip)
	}
	return s
}

// TestBalanceDaemon: two carpd routers run two balanced sections (lan
// nodes 1 and 2, wan nodes 11 and 12) with swapped advskews. Each becomes
// master of its preferred node on both sides, installs the datapath and
// sets its owned mask; the client's flows are forwarded by the router
// OpenBSD's formula names. When one router is killed (SIGKILL, its links
// stay up: the kernel detaches its tcx program), the other wins its
// nodes' elections within master-down and forwards every flow.
func TestBalanceDaemon(t *testing.T) {
	lab.Require(t)
	l, cliSw, srvSw, client, server := balanceLab(t, "cbd")
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const flows = 32
	srcs := []netip.Addr{netip.MustParseAddr("10.10.0.100")}
	for i := 1; i < flows; i++ {
		a := fmt.Sprintf("10.10.0.%d", 100+i)
		must(client.AddAddr("eth0", a+"/24"))
		srcs = append(srcs, netip.MustParseAddr(a))
	}
	_, err = l.Attach(server, srvSw, "eth0", balServer+"/24")
	must(err)
	ctx := context.Background()
	// No ARP responder yet: the hosts resolve the cluster addresses to
	// the cluster MACs statically.
	for _, c := range []struct {
		h    *lab.Host
		cmds [][]string
	}{
		{client, [][]string{
			{"ip", "neigh", "replace", "10.10.0.1", "lladdr", "01:00:5e:00:01:01", "dev", "eth0", "nud", "permanent"},
			{"ip", "route", "add", "10.20.0.0/24", "via", "10.10.0.1"}}},
		{server, [][]string{
			{"ip", "neigh", "replace", "10.20.0.1", "lladdr", "01:00:5e:00:01:0b", "dev", "eth0", "nud", "permanent"},
			{"ip", "route", "add", "10.10.0.0/24", "via", "10.20.0.1"}}},
	} {
		for _, cmd := range c.cmds {
			_, err := c.h.Run(ctx, cmd...)
			must(err)
		}
	}
	type rtr struct {
		name string
		host *lab.Host
		dir  string
		proc *lab.Proc
		ct   *balRouter // for conntrackSources
	}
	routers := make([]*rtr, 2)
	for i := range routers {
		r := &rtr{name: fmt.Sprintf("r%d", i+1), dir: t.TempDir()}
		r.host, err = l.Host(r.name)
		must(err)
		_, err = l.Attach(r.host, cliSw, "lan", fmt.Sprintf("10.10.0.%d/24", i+2))
		must(err)
		_, err = l.Attach(r.host, srvSw, "wan", fmt.Sprintf("10.20.0.%d/24", i+2))
		must(err)
		_, err = r.host.Run(ctx, "nft", "add table inet bal; add chain inet bal track { type filter hook forward priority 0; policy accept; }; add rule inet bal track ct state new counter")
		must(err)
		r.ct = &balRouter{name: r.name, host: r.host}
		routers[i] = r
	}
	sock := func(r *rtr) string { return filepath.Join(r.dir, "carpd.sock") }
	status := func(r *rtr) daemon.Status {
		t.Helper()
		raw, err := daemon.Call(sock(r), daemon.Request{Method: "status"})
		must(err)
		var st daemon.Status
		must(json.Unmarshal(raw, &st))
		return st
	}
	start := func(r *rtr, skews [2]int) {
		t.Helper()
		conf := filepath.Join(r.dir, "carpd.conf")
		must(os.WriteFile(conf, []byte(balConf(sock(r), skews)), 0o644))
		r.proc, err = r.host.StartWith(lab.StartOptions{LogFile: filepath.Join(r.dir, "carpd.log")}, carpdBin, "-c", conf)
		must(err)
		p := r.proc
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("--- %s log:\n%s", r.name, p.Output())
			}
		})
	}
	// owned waits until r is master of exactly the nodes of mask on both
	// sides, in status and in its balance objects.
	owned := func(r *rtr, mask uint32, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		var last string
		for time.Now().Before(deadline) {
			raw, err := daemon.Call(sock(r), daemon.Request{Method: "status"})
			if err == nil {
				var st daemon.Status
				must(json.Unmarshal(raw, &st))
				ok, n := true, 0
				last = ""
				for _, v := range st.VHIDs {
					if v.Balance == nil {
						continue
					}
					n++
					idx := int(v.VHID-1) % 10
					want := "BACKUP"
					if mask&(1<<idx) != 0 {
						want = "MASTER"
					}
					last += fmt.Sprintf(" %s/%d %s mask %#b", v.Interface, v.VHID, v.State, v.Balance.Mask)
					ok = ok && v.State == want && v.Balance.Mask == mask && v.Balance.Error == "" &&
						v.Balance.Mode == "ip" && len(v.Balance.Nodes) == 2
				}
				if ok && n == 4 {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: want mask %#b on both sides; status:%s", r.name, mask, last)
	}
	echo := startEcho(t, server, 7000, 7001)
	srv := netip.MustParseAddr(balServer)
	// check: every flow answered once, forwarded only by its node's
	// owner, the reply back through it.
	check := func(phase string, port int, owner func(idx int) *rtr, alive []*rtr) {
		t.Helper()
		replies := sendFlows(t, client, srcs, srv, port, 2*time.Second)
		time.Sleep(100 * time.Millisecond)
		share := map[string]int{}
		for _, s := range srcs {
			idx := balOwner(s, srv, 2)
			o := owner(idx)
			if replies[s] != 1 || echo.count(s.String(), port) != 1 {
				t.Errorf("%s: flow %s (node %d, owner %s): %d replies, server saw %d; want 1 and 1",
					phase, s, idx, o.name, replies[s], echo.count(s.String(), port))
			}
			share[o.name]++
		}
		for _, r := range alive {
			tab := r.ct.conntrackSources(t, "ipv4", port)
			for _, s := range srcs {
				o := owner(balOwner(s, srv, 2))
				replied, seen := tab[s.String()]
				switch {
				case r == o && (!seen || !replied):
					t.Errorf("%s: flow %s: owner %s has it %v in conntrack (replied %v)", phase, s, r.name, seen, replied)
				case r != o && seen:
					t.Errorf("%s: flow %s (owner %s) was forwarded by %s too", phase, s, o.name, r.name)
				}
			}
		}
		t.Logf("%s: shares %v of %d flows", phase, share, len(srcs))
	}

	r1, r2 := routers[0], routers[1]
	begin := time.Now()
	start(r1, [2]int{0, 100})
	start(r2, [2]int{100, 0})
	owned(r1, 0b01, 15*time.Second)
	owned(r2, 0b10, 5*time.Second)
	t.Logf("each router master of its node after %v", time.Since(begin))
	check("two routers", 7000, func(idx int) *rtr { return routers[idx] }, routers)

	crash := time.Now()
	must(r1.proc.Signal(syscall.SIGKILL))
	owned(r2, 0b11, 6*time.Second)
	t.Logf("%s master of both nodes %v after %s's SIGKILL", r2.name, time.Since(crash), r1.name)
	if st := status(r2); st.VHIDs[0].Balance == nil || st.VHIDs[0].Balance.Owned != 2 {
		t.Errorf("owned count: %+v", st.VHIDs[0].Balance)
	}
	check("after the crash", 7001, func(int) *rtr { return r2 }, []*rtr{r1, r2})
}
