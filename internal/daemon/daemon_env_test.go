package daemon

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"maps"
	"net/netip"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// tap records the adverts a node puts on the segment (carptest's Drop
// hook, which drops nothing here).
type tap struct {
	mu  sync.Mutex
	ads []carp.Advert
}

func (tp *tap) install(seg *carptest.Segment, from *carptest.Node) {
	seen := map[*carptest.Node]bool{}
	seg.Drop = func(f, to *carptest.Node, a carp.Advert) bool {
		if f == from {
			tp.mu.Lock()
			// One record per advert, not per receiver.
			if len(seen) == 0 || seen[to] {
				clear(seen)
				tp.ads = append(tp.ads, a)
			}
			seen[to] = true
			tp.mu.Unlock()
		}
		return false
	}
}

func (tp *tap) adverts() []carp.Advert {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.ads)
}

// TestEnvElection: two daemons on one segment elect the more frequent
// one; the master holds the VIP, the backup knows it; status is filled
// in; when the master stops it bows out and the backup takes over at
// once, the VIP moving with it.
func TestEnvElection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a := newHost(t, seg, "a", config.Default())
		b := newHost(t, seg, "b", config.Default())
		a.start(cfgWith(a.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")))
		b.start(cfgWith(b.next, vhid("dev0", 1, 100, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)

		va, vb := a.vhost("dev0", 1), b.vhost("dev0", 1)
		if va.State != "MASTER" || vb.State != "BACKUP" {
			t.Fatalf("states a=%s b=%s, want MASTER, BACKUP", va.State, vb.State)
		}
		if vb.Master != a.node.Addr.String() || vb.MasterSeen == nil {
			t.Errorf("b's master %q (seen %v), want %s", vb.Master, vb.MasterSeen, a.node.Addr)
		}
		if got := a.port("dev0").Held(); !slices.Equal(got, []netip.Prefix{pfx("10.0.0.1/24")}) {
			t.Errorf("a holds %v", got)
		}
		if got := b.port("dev0").Held(); len(got) != 0 {
			t.Errorf("b holds %v", got)
		}

		// Status: every part filled in.
		st := a.status()
		if st.PID == 0 || st.Now.IsZero() || st.Started.IsZero() || st.Reloads != 0 {
			t.Errorf("status header %+v", st)
		}
		if len(st.VHIDs) != 1 || st.VHIDs[0].Interface != "dev0" || st.VHIDs[0].AdvSkew != 0 ||
			!slices.Equal(st.VHIDs[0].Addresses, []string{"10.0.0.1/24"}) || st.VHIDs[0].Counters.AdvertsSent == 0 {
			t.Errorf("status vhids %+v", st.VHIDs)
		}
		if len(st.Interfaces) != 1 || st.Interfaces[0].Name != "dev0" || !st.Interfaces[0].LinkUp || st.Interfaces[0].Error != "" {
			t.Errorf("status interfaces %+v", st.Interfaces)
		}
		if !sameLegacy(st.Demotion, DemotionStatus{}) {
			t.Errorf("status demotion %+v", st.Demotion)
		}
		var path []string
		for _, tr := range st.Transitions {
			if tr.Interface != "dev0" || tr.VHID != 1 || tr.Reason == "" || tr.Time.IsZero() {
				t.Errorf("transition %+v", tr)
			}
			path = append(path, tr.From+"->"+tr.To)
		}
		if !slices.Equal(path, []string{"INIT->BACKUP", "BACKUP->MASTER"}) {
			t.Errorf("a's transitions %v", path)
		}

		stopAt := seg.Now()
		a.stop()
		if d := seg.Now().Sub(stopAt); d > time.Second {
			t.Errorf("a took %v to stop", d)
		}
		vb = b.vhost("dev0", 1)
		if vb.State != "MASTER" || !strings.Contains(lastReason(b), "bowed out") {
			t.Errorf("after a stopped, b is %s (%q), want MASTER after a bow-out", vb.State, lastReason(b))
		}
		if got := b.port("dev0").Held(); len(got) != 1 {
			t.Errorf("b holds %v", got)
		}
		if got := a.port("dev0").Held(); len(got) != 0 {
			t.Errorf("a still holds %v after stopping", got)
		}
	})
}

func lastReason(h *host) string {
	st := h.status()
	if len(st.Transitions) == 0 {
		return ""
	}
	return st.Transitions[len(st.Transitions)-1].Reason
}

// transitionsOf returns the transitions of vhid in status, as FROM->TO.
func transitionsOf(st Status, vhid uint8) []string {
	var out []string
	for _, tr := range st.Transitions {
		if tr.VHID == vhid {
			out = append(out, tr.From+"->"+tr.To)
		}
	}
	return out
}

// TestEnvReloadDiff: a reload leaves an unchanged vhid alone (the same
// vhost, no transition), updates a changed one in place (same vhost, no
// transition, its VIPs moved to the new addresses, its new advskew and
// password on the wire) and bows a removed master out: the peer hears the
// bow-out and takes over at once, and the removed vhid's VIP is gone.
func TestEnvReloadDiff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		seg.VHID, seg.Password, seg.VIP = 3, "three", pfx("10.0.0.3/24")
		me := newHost(t, seg, "me", config.Default())
		peer := seg.Add("peer", carp.Params{AdvBase: 1, AdvSkew: 200})
		var tp tap
		tp.install(seg, me.node)
		v1 := vhid("dev0", 1, 0, "one", "10.0.0.1/24")
		v2 := vhid("dev0", 2, 0, "two", "10.0.0.2/24")
		v3 := vhid("dev0", 3, 0, "three", "10.0.0.3/24")
		me.start(cfgWith(me.next, v1, v2, v3))
		seg.Start(peer)
		seg.Run(5 * time.Second)
		for _, id := range []uint8{1, 2, 3} {
			if s := me.vhost("dev0", id).State; s != "MASTER" {
				t.Fatalf("vhid %d is %s, want MASTER", id, s)
			}
		}
		if s := peer.V.Status().State; s != "BACKUP" {
			t.Fatalf("peer is %s, want BACKUP", s)
		}
		want := []netip.Prefix{pfx("10.0.0.1/24"), pfx("10.0.0.2/24"), pfx("10.0.0.3/24")}
		if got := me.port("dev0").Held(); !slices.Equal(got, want) {
			t.Fatalf("holds %v, want %v", got, want)
		}
		before := me.status()
		old1, old2 := me.running("dev0/1"), me.running("dev0/2")

		v2.AdvSkew, v2.Password, v2.Addresses = 50, "two-new", []netip.Prefix{pfx("10.0.0.20/24")}
		reloadAt := seg.Now()
		me.reload(cfgWith(me.next, v1, v2))
		seg.Run(3 * time.Second)

		after := me.status()
		if after.Reloads != 1 {
			t.Errorf("reloads %d", after.Reloads)
		}
		if me.running("dev0/1") != old1 {
			t.Error("unchanged vhid 1: a new vhost")
		}
		if me.running("dev0/2") != old2 {
			t.Error("changed vhid 2: a new vhost, want it updated in place")
		}
		for _, id := range []uint8{1, 2} {
			if a, b := transitionsOf(before, id), transitionsOf(after, id); !slices.Equal(a, b) {
				t.Errorf("vhid %d transitions %v, then %v: want none from the reload", id, a, b)
			}
		}
		s2 := me.vhost("dev0", 2)
		if s2.State != "MASTER" || s2.AdvSkew != 50 || !slices.Equal(s2.Addresses, []string{"10.0.0.20/24"}) {
			t.Errorf("vhid 2 after reload: %s advskew %d %v", s2.State, s2.AdvSkew, s2.Addresses)
		}
		for _, v := range after.VHIDs {
			if v.VHID == 3 {
				t.Errorf("removed vhid 3 still in status: %+v", v)
			}
		}
		want = []netip.Prefix{pfx("10.0.0.1/24"), pfx("10.0.0.20/24")}
		if got := me.port("dev0").Held(); !slices.Equal(got, want) {
			t.Errorf("holds %v after reload, want %v", got, want)
		}

		// On the wire: vhid 3 bowed out; vhid 2 advertises its new skew,
		// authenticated with its new password.
		var bowOuts, newSkew int
		for _, a := range tp.adverts() {
			switch {
			case a.VHID == 3 && a.AdvBase == carp.BowOutAdvBase && a.AdvSkew == carp.BowOutAdvSkew:
				bowOuts++
			case a.VHID == 2 && a.AdvSkew == 50:
				newSkew++
				au := carp.NewAuth("two-new", 2, []netip.Addr{netip.MustParseAddr("10.0.0.20")})
				if !au.Verify(a.Counter, a.HMAC) {
					t.Errorf("vhid 2 advert not authenticated with the new password")
				}
			}
		}
		if bowOuts == 0 || newSkew == 0 {
			t.Errorf("adverts: %d bow-outs of vhid 3, %d of vhid 2 with advskew 50", bowOuts, newSkew)
		}
		if s := peer.V.Status(); s.State != "MASTER" {
			t.Errorf("peer is %s after vhid 3 was removed, want MASTER", s.State)
		}
		l := peer.Log[len(peer.Log)-1]
		at, _ := time.ParseDuration(strings.TrimPrefix(strings.Fields(l)[0], "t="))
		if since := at - reloadAt.Sub(carptest.Epoch); !strings.Contains(l, "bowed out") || since > 100*time.Millisecond {
			t.Errorf("peer took over %q, want within 100 ms of the reload (t=%v), on the bow-out", l, reloadAt.Sub(carptest.Epoch))
		}
	})
}

// sameLegacy compares the demotion fields status had before demotion
// groups.
func sameLegacy(a, b DemotionStatus) bool {
	return a.Manual == b.Manual && a.Link == b.Link && a.Sync == b.Sync && a.Maintenance == b.Maintenance
}

// demotions returns each running vhid's demotion as its vhost has it.
func demotions(h *host) map[uint8]uint8 {
	out := map[uint8]uint8{}
	for _, v := range h.status().VHIDs {
		out[v.VHID] = v.Demotion
	}
	return out
}

// TestEnvDemotionSum: a vhid's demotion is the sum of the global manual
// demotion, its own manual demotion, one per interface whose link is down
// and 240 in maintenance, capped at 255; status breaks it down by source,
// and the adverts carry it.
func TestEnvDemotionSum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		seg.Add("listener", carp.Params{}) // never started: only hears
		var tp tap
		tp.install(seg, h.node)
		h.start(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24"),
			vhid("dev0", 2, 0, "pw", "10.0.0.2/24"), vhid("dev1", 3, 0, "pw", "10.0.0.3/24")))
		seg.Run(5 * time.Second)
		check := func(step string, src DemotionStatus, want map[uint8]uint8) {
			t.Helper()
			seg.Run(time.Second)
			st := h.status()
			if !sameLegacy(st.Demotion, src) {
				t.Errorf("%s: sources %+v, want %+v", step, st.Demotion, src)
			}
			if got := demotions(h); !maps.Equal(got, want) {
				t.Errorf("%s: demotions %v, want %v", step, got, want)
			}
		}
		check("start", DemotionStatus{}, map[uint8]uint8{1: 0, 2: 0, 3: 0})

		if err := h.d.Demote(0, "", "", 3); err != nil {
			t.Fatal(err)
		}
		if err := h.d.Demote(2, "", "", 10); err != nil {
			t.Fatal(err)
		}
		check("manual", DemotionStatus{Manual: 3}, map[uint8]uint8{1: 3, 2: 13, 3: 3})
		// The running vhid on dev0 advertises its demotion.
		ads := tp.adverts()
		if last := ads[len(ads)-1]; last.Demote != map[uint8]uint8{1: 3, 2: 13, 3: 3}[last.VHID] {
			t.Errorf("advert of vhid %d carries demotion %d", last.VHID, last.Demote)
		}

		h.links.Set("dev0", false)
		check("dev0 down", DemotionStatus{Manual: 3, Link: 1}, map[uint8]uint8{1: 4, 2: 14, 3: 4})
		h.links.Set("dev1", false)
		check("both down", DemotionStatus{Manual: 3, Link: 2}, map[uint8]uint8{1: 5, 2: 15, 3: 5})
		if s := h.vhost("dev1", 3).State; s != "INIT" {
			t.Errorf("vhid 3 on a down link is %s, want INIT", s)
		}

		if _, err := h.d.Maintenance(true); err != nil {
			t.Fatal(err)
		}
		check("maintenance", DemotionStatus{Manual: 3, Link: 2, Maintenance: true}, map[uint8]uint8{1: 245, 2: 255, 3: 245})
		if err := h.d.Demote(2, "", "", 100); err != nil {
			t.Fatal(err)
		}
		check("capped", DemotionStatus{Manual: 3, Link: 2, Maintenance: true}, map[uint8]uint8{1: 245, 2: 255, 3: 245})

		// Every source undone: back to 0.
		if _, err := h.d.Maintenance(false); err != nil {
			t.Fatal(err)
		}
		h.links.Set("dev0", true)
		h.links.Set("dev1", true)
		if err := h.d.Demote(0, "", "", -3); err != nil {
			t.Fatal(err)
		}
		if err := h.d.Demote(2, "", "", -110); err != nil {
			t.Fatal(err)
		}
		check("undone", DemotionStatus{}, map[uint8]uint8{1: 0, 2: 0, 3: 0})
	})
}

// TestEnvMaintenanceAcrossRestart: maintenance mode is kept in the state
// file; a daemon started on it is demoted from the start: with preempt on
// and the better advskew it still never takes over from a peer, and never
// advertises undemoted, until maintenance is turned off.
func TestEnvMaintenanceAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		seg.VHID, seg.Password, seg.VIP = 1, "pw", pfx("10.0.0.1/24")
		cfg := config.Default()
		cfg.Global.ControlSocket = t.TempDir() + "/carpd.sock"
		cfg.Global.Preempt = true
		v := vhid("dev0", 1, 0, "pw", "10.0.0.1/24")
		first := newHost(t, seg, "first", cfgWith(cfg, v))
		first.start(first.next)
		seg.Run(5 * time.Second)
		if res, err := first.d.Maintenance(true); err != nil || !res.Maintenance {
			t.Fatalf("maintenance: %+v %v", res, err)
		}
		first.stop()

		// The same router comes back (a new daemon, a new port) while
		// a peer with a worse advskew is master.
		peer := seg.Add("peer", carp.Params{AdvBase: 1, AdvSkew: 100})
		seg.Start(peer)
		seg.Run(5 * time.Second)
		if s := peer.V.Status().State; s != "MASTER" {
			t.Fatalf("peer %s", s)
		}
		peerLog := len(peer.Log)
		again := newHost(t, seg, "again", cfgWith(cfg, v))
		var tp tap
		tp.install(seg, again.node)
		again.start(again.next)
		seg.Run(10 * time.Second)

		st := again.status()
		if !st.Demotion.Maintenance || st.VHIDs[0].Demotion != MaintenanceDemotion {
			t.Errorf("restarted: maintenance %v, demotion %d; want on, %d", st.Demotion.Maintenance, st.VHIDs[0].Demotion, MaintenanceDemotion)
		}
		if st.VHIDs[0].State != "BACKUP" || len(peer.Log) != peerLog {
			t.Errorf("restarted daemon %s, peer's transitions %v; want BACKUP, the peer untouched", st.VHIDs[0].State, peer.Log[peerLog:])
		}
		for _, a := range tp.adverts() {
			if a.Demote != MaintenanceDemotion {
				t.Fatalf("the restarted daemon advertised demotion %d", a.Demote)
			}
		}

		// Maintenance off: the better router preempts, undemoted.
		if _, err := again.d.Maintenance(false); err != nil {
			t.Fatal(err)
		}
		seg.Run(5 * time.Second)
		if s := again.vhost("dev0", 1); s.State != "MASTER" || s.Demotion != 0 {
			t.Errorf("after maintenance off: %s demotion %d, want MASTER 0", s.State, s.Demotion)
		}
		ads := tp.adverts()
		if len(ads) == 0 || ads[len(ads)-1].Demote != 0 {
			t.Errorf("adverts after maintenance off: %+v", ads)
		}
	})
}

// TestEnvNetworkMove: a vhid configured with an OpenWrt network name runs
// on the network's device; when netifd reports the network on another
// device, the vhid moves there: it bows out on the old one (its VIP
// removed) and becomes master on the new one.
func TestEnvNetworkMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.netifd.SetNetwork("lan", "dev0")
		h.start(cfgWith(h.next, vhid("lan", 1, 0, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)
		v := h.vhost("lan", 1)
		if v.Interface != "dev0" || v.Network != "lan" || v.State != "MASTER" {
			t.Fatalf("before: %s (network %q) %s", v.Interface, v.Network, v.State)
		}
		if got := h.port("dev0").Held(); len(got) != 1 {
			t.Fatalf("dev0 holds %v", got)
		}

		h.netifd.SetNetwork("lan", "dev1")
		h.d.netEvents <- "lan" // netifd's network.interface event
		seg.Clock.Settle()
		seg.Run(5 * time.Second)
		v = h.vhost("lan", 1)
		if v.Interface != "dev1" || v.Network != "lan" || v.State != "MASTER" {
			t.Errorf("after: %s (network %q) %s, want dev1 (lan) MASTER", v.Interface, v.Network, v.State)
		}
		if got := h.port("dev1").Held(); len(got) != 1 {
			t.Errorf("dev1 holds %v", got)
		}
		if got := h.port("dev0").Held(); len(got) != 0 {
			t.Errorf("dev0 still holds %v", got)
		}
		st := h.status()
		if len(st.Interfaces) != 1 || st.Interfaces[0].Name != "dev1" {
			t.Errorf("interfaces %+v, want dev1 only (dev0 closed)", st.Interfaces)
		}

		// A network that stops resolving leaves the vhid where it runs.
		h.netifd.SetNetwork("lan", "")
		h.d.netEvents <- "lan"
		seg.Clock.Settle()
		seg.Run(5 * time.Second)
		if v = h.vhost("lan", 1); v.Interface != "dev1" || v.State != "MASTER" {
			t.Errorf("unresolved: %s %s, want it to stay on dev1, MASTER", v.Interface, v.State)
		}
	})
}
