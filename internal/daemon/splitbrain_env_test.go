package daemon

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
)

// syncPair runs two daemons, a (advskew 0) and b (advskew 100), with
// vhid 1 on dev0 of seg and state sync between them over one link.
func syncPair(t *testing.T, seg *carptest.Segment) (a, b *host) {
	t.Helper()
	return syncPairOn(t, seg, "dev0", "dev0")
}

// syncPairOn is syncPair with vhid 1 on device ia on a and ib on b (one
// segment all the same).
func syncPairOn(t *testing.T, seg *carptest.Segment, ia, ib string) (a, b *host) {
	t.Helper()
	a = newHost(t, seg, "a", config.Default())
	b = newHost(t, seg, "b", config.Default())
	link := ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
	a.syncLink, b.syncLink, b.syncEnd = link, link, 1
	ca := syncCfg(cfgWith(a.next, vhid(ia, 1, 0, "pw", "10.0.0.1/24")), 30*time.Second)
	cb := syncCfg(cfgWith(b.next, vhid(ib, 1, 100, "pw", "10.0.0.1/24")), 30*time.Second)
	cb.Sync.Peer = syncAddrMe.Addr()
	a.start(ca)
	b.start(cb)
	if !stepUntil(seg, 10*time.Second, func() bool {
		sa, sb := a.status(), b.status()
		return sa.Sync.Bulk.Synced && sb.Sync.Bulk.Synced && sa.Sync.PeerUp && sb.Sync.PeerUp
	}) {
		t.Fatalf("sync never came up: a %+v\nb %+v", a.status().Sync, b.status().Sync)
	}
	step(seg, 4*time.Second)
	if sa, sb := a.vhost(ia, 1).State, b.vhost(ib, 1).State; sa != "MASTER" || sb != "BACKUP" {
		t.Fatalf("a is %s, b %s; want MASTER and BACKUP", sa, sb)
	}
	return a, b
}

// TestEnvSplitBrainAlarm: the CARP adverts between two routers are lost
// (a partition of the LAN) while their sync link is up. b takes over;
// once both have been MASTER of vhid 1 for longer than master-down, both
// daemons raise the alarm (status split_brain, split_brain_alarms), and
// neither gives up its VIPs because of it. When the partition heals, b
// yields and the alarm clears on both; the counter stays.
func TestEnvSplitBrainAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a, b := syncPair(t, seg)
		step(seg, 5*time.Second)
		for _, h := range []*host{a, b} {
			if st := h.status(); len(st.SplitBrain) != 0 || st.SplitBrainAlarms != 0 {
				t.Fatalf("%s: alarm without a split brain: %+v, %d", h.node.Name, st.SplitBrain, st.SplitBrainAlarms)
			}
		}
		partitioned := true
		seg.Drop = func(from, to *carptest.Node, _ carp.Advert) bool { return partitioned }
		// b takes over after master-down (3 s); the alarm only after
		// master-down more of two masters.
		if !stepUntil(seg, 5*time.Second, func() bool { return b.vhost("dev0", 1).State == "MASTER" }) {
			t.Fatal("b never took over in the partition")
		}
		both := seg.Now()
		step(seg, 2*time.Second)
		if st := a.status(); len(st.SplitBrain) != 0 {
			t.Fatalf("alarm %v after 2 s of two masters, before master-down", st.SplitBrain)
		}
		for _, h := range []*host{a, b} {
			if !stepUntil(seg, 4*time.Second, func() bool { return len(h.status().SplitBrain) == 1 }) {
				t.Fatalf("%s: no alarm %v after two masters: %+v", h.node.Name, seg.Now().Sub(both), h.status().SplitBrain)
			}
			st := h.status()
			sb := st.SplitBrain[0]
			if sb.Interface != "dev0" || sb.VHID != 1 || st.SplitBrainAlarms != 1 || sb.Since.After(seg.Now()) {
				t.Errorf("%s: split_brain %+v, alarms %d", h.node.Name, st.SplitBrain, st.SplitBrainAlarms)
			}
		}
		// Nobody is black-holed: both still hold the VIP.
		step(seg, 5*time.Second)
		for _, h := range []*host{a, b} {
			if held := h.port("dev0").Held(); len(held) != 1 || h.vhost("dev0", 1).State != "MASTER" {
				t.Fatalf("%s: %s holding %v during the alarm; want MASTER with the VIP", h.node.Name, h.vhost("dev0", 1).State, held)
			}
			if n := h.status().SplitBrainAlarms; n != 1 {
				t.Errorf("%s: %d alarms for one split brain", h.node.Name, n)
			}
		}
		partitioned = false
		for _, h := range []*host{a, b} {
			if !stepUntil(seg, 3*time.Second, func() bool { return len(h.status().SplitBrain) == 0 }) {
				t.Fatalf("%s: alarm not cleared after the heal: %+v", h.node.Name, h.status().SplitBrain)
			}
		}
		if sa, sb := a.vhost("dev0", 1).State, b.vhost("dev0", 1).State; sa != "MASTER" || sb != "BACKUP" {
			t.Fatalf("after the heal a is %s, b %s", sa, sb)
		}
		if n := a.status().SplitBrainAlarms; n != 1 {
			t.Errorf("a: %d alarms after the heal, want the 1 counted", n)
		}
	})
}

// TestEnvSplitBrainOtherNames: the two routers name the vhid's interface
// differently (dev0 here, dev1 there); each has vhid 1 once, so it is
// matched by vhid alone and the split brain is still seen.
func TestEnvSplitBrainOtherNames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a, b := syncPairOn(t, seg, "dev0", "dev1")
		seg.Drop = func(from, to *carptest.Node, _ carp.Advert) bool { return true }
		if !stepUntil(seg, 5*time.Second, func() bool { return b.vhost("dev1", 1).State == "MASTER" }) {
			t.Fatal("b never took over in the partition")
		}
		if !stepUntil(seg, 6*time.Second, func() bool { return len(a.status().SplitBrain) == 1 && len(b.status().SplitBrain) == 1 }) {
			t.Fatalf("no alarm: a %+v, b %+v", a.status().SplitBrain, b.status().SplitBrain)
		}
		if sa, sb := a.status().SplitBrain[0], b.status().SplitBrain[0]; sa.Interface != "dev0" || sb.Interface != "dev1" {
			t.Errorf("alarms on %s and %s, want each router's own device", sa.Interface, sb.Interface)
		}
	})
}
