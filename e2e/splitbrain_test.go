package e2e

import (
	"testing"
	"time"
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
