package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/ubus/json"
)

// partition makes r drop every CARP advert it receives (nftables, input
// hook: the raw IP sockets carpd reads from see packets after it), or
// mends that.
func (c *cluster) partition(r *router, on bool) {
	c.t.Helper()
	nft := requireTool(c.t, "nft")
	if !on {
		c.run(r.host, nft, "delete", "table", "inet", "carpsb")
		return
	}
	c.run(r.host, nft, "add", "table", "inet", "carpsb")
	c.run(r.host, nft, "add", "chain", "inet", "carpsb", "in", "{ type filter hook input priority 0 ; }")
	c.run(r.host, nft, "add", "rule", "inet", "carpsb", "in", "ip", "protocol", "112", "drop")
}

// clientNeighIs reports whether the client's neighbour entry for vip
// holds r's MAC.
func (c *cluster) clientNeighIs(r *router, vip string) bool {
	mac, _, err := c.client.Neigh("lan", vip)
	if err != nil {
		return false
	}
	ls, err := r.host.LinkState("lan")
	return err == nil && mac == ls.MAC
}

// TestHealedPartitionNeighbour: the routers stop hearing each other's
// adverts; r2 takes over too and its gratuitous ARP moves the client to
// it (a split brain). When the partition heals, r2 yields, and r1, which
// stays master, announces the VIP at once: the client's neighbour entry
// points at r1 again within an advert interval, without the client
// sending anything. Before, r1 only kept advertising, and the client's
// entry kept pointing at r2, which no longer had the VIP, until the
// kernel found out by itself (seconds of failed traffic).
func TestHealedPartitionNeighbour(t *testing.T) {
	c, r1, r2 := twoRouters(t, false)
	c.waitClientReaches("10.0.1.1", 3*time.Second)
	if !c.clientNeighIs(r1, "10.0.1.1") {
		t.Fatal("the client does not resolve the VIP to r1")
	}
	c.partition(r1, true)
	c.partition(r2, true)
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	c.waitFor(5*time.Second, "the client following r2's announcement", func() bool { return c.clientNeighIs(r2, "10.0.1.1") })
	if s := c.state(r1, "lan", 1); s != "MASTER" {
		t.Fatalf("r1 is %s in the partition, want MASTER", s)
	}
	// r2's announcement repeats two adverts after its takeover: let it.
	time.Sleep(3 * time.Second)

	c.partition(r1, false)
	c.partition(r2, false)
	healed := time.Now()
	// r1's interval is 1 s, r2's 1.39 s: the first advert crosses
	// within 1.39 s, and the answer is immediate.
	const within = 2500 * time.Millisecond
	for !c.clientNeighIs(r1, "10.0.1.1") {
		if time.Since(healed) > within {
			mac, state, _ := c.client.Neigh("lan", "10.0.1.1")
			t.Fatalf("%v after the heal the client's entry for the VIP is %s (%s), not r1's; r1 %s, r2 %s",
				time.Since(healed).Round(time.Millisecond), mac, state, c.state(r1, "lan", 1), c.state(r2, "lan", 1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the client's entry points at r1 %v after the heal", time.Since(healed).Round(time.Millisecond))
	c.waitState(r2, "lan", 1, "BACKUP", 3*time.Second)
	c.onlyHolder(r1, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 3*time.Second)
}

// TestSplitBrainAlarmAndMaintenanceWait: two routers with state sync on a
// link of its own and ubus on r1. The LAN drops their adverts: both are
// MASTER and, since the sync link still carries their CARP states, r1
// raises the split-brain alarm (status, ubus event carp.split_brain
// detected) while both keep the VIP; the heal clears it. Then ubus
// maintenance {enable, wait} answers once r2 has taken over and has every
// flow, and `carpd maintenance off --wait` once r1 is master again.
func TestSplitBrainAlarmAndMaintenanceWait(t *testing.T) {
	c := newCluster(t, 2, segment{name: "lan", prefix: "10.0.1", n: 1}, segment{name: "sync", prefix: "10.0.3", n: 3})
	r1, r2 := c.routers[0], c.routers[1]
	sock, _ := fakeUbusd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, evs := listenEvents(t, ctx, sock, "carp.split_brain")
	hasEvent := func(state string) bool {
		for _, e := range evs.all() {
			if e["state"] == state && e["interface"] == "lan" && e["vhid"] == float64(1) && e["peer"] != "" {
				return true
			}
		}
		return false
	}
	const key = "5d0c9e71a2b84f36e1d7c05a9b3f6248d1e07c93a5b26f14e8c3d90b7a6f1e25"
	conf := func(i int) string {
		s := confText(false, lanVHID([]int{0, 100}[i])) +
			fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n", 3-i, key)
		if i == 0 {
			s = strings.Replace(s, "option log_level", "option ubus_socket '"+sock+"'\n\toption log_level", 1)
		}
		return s
	}
	c.start(r1, conf(0))
	c.start(r2, conf(1))
	c.waitState(r1, "lan", 1, "MASTER", 10*time.Second)
	c.waitHearing(r2, "lan", 1, 5*time.Second)
	c.waitFor(10*time.Second, "sync up both ways", func() bool { return c.status(r1).Sync.PeerUp && c.status(r2).Sync.PeerUp })

	c.partition(r1, true)
	c.partition(r2, true)
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	for _, r := range []*router{r1, r2} {
		c.waitFor(8*time.Second, r.name+"'s split-brain alarm", func() bool { return len(c.status(r).SplitBrain) == 1 })
	}
	c.waitFor(3*time.Second, "carp.split_brain detected", func() bool { return hasEvent("detected") })
	if st := c.status(r1); st.SplitBrainAlarms != 1 || st.SplitBrain[0].Interface != "lan" || st.SplitBrain[0].VHID != 1 {
		t.Fatalf("r1: split_brain %+v, alarms %d", st.SplitBrain, st.SplitBrainAlarms)
	}
	// Nobody gives up the VIP because of the alarm.
	if h := c.holders("lan", vip4); len(h) != 2 {
		t.Fatalf("VIP holders during the split brain: %v, want both", h)
	}
	c.partition(r1, false)
	c.partition(r2, false)
	c.waitState(r2, "lan", 1, "BACKUP", 3*time.Second)
	c.waitFor(3*time.Second, "alarm cleared on r1", func() bool { return len(c.status(r1).SplitBrain) == 0 })
	c.waitFor(3*time.Second, "carp.split_brain cleared", func() bool { return hasEvent("cleared") })

	start := time.Now()
	raw, err := cli.Call(ctx, "carpd", "maintenance", json.RawMessage(`{"enable":true,"wait":20,"ubus_rpc_session":"x"}`))
	if err != nil {
		t.Fatalf("ubus maintenance with wait: %v", err)
	}
	var res daemon.MaintenanceWaitResult
	if err := json.Unmarshal(raw, &res); err != nil || !res.Maintenance || res.Wait == nil || res.Wait.State != daemon.MaintDone {
		t.Fatalf("ubus maintenance with wait: %s (%v)", raw, err)
	}
	t.Logf("maintenance on confirmed after %v", time.Since(start).Round(time.Millisecond))
	if s1, s2 := c.state(r1, "lan", 1), c.state(r2, "lan", 1); s1 != "BACKUP" || s2 != "MASTER" {
		t.Fatalf("answered with r1 %s, r2 %s", s1, s2)
	}
	out := c.run(r1.host, carpdBin, "maintenance", "-s", r1.sock(), "off", "--wait=20")
	if !strings.Contains(out, "handover confirmed") {
		t.Fatalf("carpd maintenance off --wait printed %q", out)
	}
	if st := c.status(r1); st.MaintenanceWait == nil || st.MaintenanceWait.State != daemon.MaintDone || st.Demotion.Maintenance {
		t.Fatalf("status after off --wait: %+v, maintenance %v", st.MaintenanceWait, st.Demotion.Maintenance)
	}
}
