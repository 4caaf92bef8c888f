package daemon

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/demote"
)

// These tests run the daemon's real sync engine (ctsync.Engine) on a fake
// conntrack table and an in-memory sync link (ctsynctest), its peer a
// bare engine on the other end. The engines run on the bubble's time,
// the vhosts on the segment's clock: step moves both.

const syncTestKey = "5d0c9e71a2b84f36e1d7c05a9b3f6248d1e07c93a5b26f14e8c3d90b7a6f1e25"

var (
	syncAddrMe   = netip.MustParseAddrPort("10.99.0.1:7112")
	syncAddrPeer = netip.MustParseAddrPort("10.99.0.2:7112")
)

// syncCfg is base with state sync on toward the peer of the link.
func syncCfg(base *config.Config, bulkTimeout time.Duration) *config.Config {
	c := *base
	c.Sync = config.DefaultSync()
	c.Sync.Enabled, c.Sync.Interface, c.Sync.Peer, c.Sync.Key = true, "sync0", syncAddrPeer.Addr(), syncTestKey
	c.Sync.BulkTimeout = bulkTimeout
	return &c
}

// syncPeer is the other router's sync engine, on end 1 of a link, with
// its own fake table.
type syncPeer struct {
	e      *ctsync.Engine
	k      *ctsynctest.Kernel
	cancel context.CancelFunc
	done   chan struct{}
}

// startSyncPeer runs an engine on end i of l toward the other end, with
// k's flows (epoch 0: from the clock).
func startSyncPeer(t *testing.T, l *ctsynctest.Link, i int, k *ctsynctest.Kernel, epoch uint32) *syncPeer {
	return startSyncPeerKey(t, l, i, k, epoch, syncTestKey)
}

// startSyncPeerKey is startSyncPeer with another key.
func startSyncPeerKey(t *testing.T, l *ctsynctest.Link, i int, k *ctsynctest.Kernel, epoch uint32, keyText string) *syncPeer {
	t.Helper()
	key, err := wire.KeyFromConfig(keyText)
	if err != nil {
		t.Fatal(err)
	}
	to := syncAddrMe
	if i == 0 {
		to = syncAddrPeer
	}
	return runSyncPeer(t, l, i, k, ctsync.Config{Key: key, Name: "peer", Peer: to, Window: 200 * time.Millisecond,
		Refresh: time.Minute, BulkTimeout: time.Minute, Epoch: epoch})
}

// runSyncPeer runs a peer engine with cfg on end i of l.
func runSyncPeer(t *testing.T, l *ctsynctest.Link, i int, k *ctsynctest.Kernel, cfg ctsync.Config) *syncPeer {
	t.Helper()
	p := &syncPeer{k: k, done: make(chan struct{})}
	var err error
	p.e, err = ctsync.New(cfg, k, l.Reopen(i))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { defer close(p.done); _ = p.e.Run(ctx) }()
	t.Cleanup(p.stop)
	return p
}

func (p *syncPeer) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
}

// step moves the segment's clock and the bubble's time d forward, in
// steps of 100 ms.
func step(seg *carptest.Segment, d time.Duration) {
	for ; d > 0; d -= 100 * time.Millisecond {
		seg.Run(100 * time.Millisecond)
		time.Sleep(100 * time.Millisecond)
	}
}

// stepUntil steps until cond holds, at most max; it reports whether it did.
func stepUntil(seg *carptest.Segment, max time.Duration, cond func() bool) bool {
	for ; max > 0; max -= 100 * time.Millisecond {
		if cond() {
			return true
		}
		step(seg, 100*time.Millisecond)
	}
	return cond()
}

func peerFlows(k *ctsynctest.Kernel, n int) {
	for i := range n {
		orig := flow.Tuple{Src: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i)}), Dst: netip.AddrFrom4([4]byte{198, 51, 100, 7}),
			Proto: flow.ProtoTCP, SrcPort: uint16(20000 + i), DstPort: 443}
		reply := orig.Inverse()
		reply.Dst = netip.AddrFrom4([4]byte{203, 0, 113, 1})
		k.Put(flow.Flow{Orig: orig, Reply: reply, TCPState: flow.TCPEstablished, Timeout: 432000,
			Status: flow.StatusConfirmed | flow.StatusSrcNAT | flow.StatusSeenReply | flow.StatusAssured}, flow.EventNew)
	}
}

// hasSource reports whether srcs has the source group/name with value.
func hasSource(srcs []demote.Source, group, name string, value int) bool {
	for _, s := range srcs {
		if s.Group == group && s.Name == name && s.Value == value {
			return true
		}
	}
	return false
}

// lastDemote is the demotion in h's last advert on the segment.
func lastDemote(t *testing.T, tp *tap) uint8 {
	t.Helper()
	ads := tp.adverts()
	if len(ads) == 0 {
		t.Fatal("no advert on the segment")
	}
	return ads[len(ads)-1].Demote
}

// TestEnvSyncDemotionLifted: a daemon starting with sync on is demoted by
// the sync demotion (32), in status and on the wire, until the peer's
// table is in; then the demotion is lifted (not timed out) and the peer's
// flows are in its table.
func TestEnvSyncDemotionLifted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		seg.Add("listener", carp.Params{}) // never started: only hears
		var tp tap
		tp.install(seg, h.node)
		h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 30*time.Second))
		step(seg, 3*time.Second)
		st := h.status()
		if st.Demotion.Sync != 32 || st.Sync.Bulk.Synced || h.vhost("dev0", 1).Demotion != 32 || lastDemote(t, &tp) != 32 {
			t.Fatalf("before the peer's table: demotion %+v, synced %v, vhost %d, advert %d; want 32 everywhere",
				st.Demotion, st.Sync.Bulk.Synced, h.vhost("dev0", 1).Demotion, lastDemote(t, &tp))
		}

		pk := ctsynctest.NewKernel()
		peerFlows(pk, 20)
		startSyncPeer(t, h.syncLink, 1, pk, 0)
		if !stepUntil(seg, 10*time.Second, func() bool { return h.status().Sync.Bulk.Synced }) {
			t.Fatalf("the peer's table never came in: %+v", h.status().Sync.Status)
		}
		step(seg, 2*time.Second)
		st = h.status()
		if st.Demotion.Sync != 0 || st.Sync.Bulk.TimedOut || h.vhost("dev0", 1).Demotion != 0 || lastDemote(t, &tp) != 0 {
			t.Errorf("after the peer's table: demotion %+v, timed out %v, vhost %d, advert %d; want 0, not timed out",
				st.Demotion, st.Sync.Bulk.TimedOut, h.vhost("dev0", 1).Demotion, lastDemote(t, &tp))
		}
		if n := len(h.syncKern.Snapshot()); n != 20 || st.Sync.FlowsPeer != 20 {
			t.Errorf("our table has %d flows, status %d from the peer; want the peer's 20", n, st.Sync.FlowsPeer)
		}
	})
}

// syncHostAlone starts a host with sync on (bulk_timeout 10 s) and one
// vhid, a listener on the segment, a tap on its adverts, and nobody at
// the other end of the sync link.
func syncHostAlone(t *testing.T, seg *carptest.Segment) (*host, *tap) {
	h := newHost(t, seg, "me", config.Default())
	h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
	seg.Add("listener", carp.Params{})
	tp := &tap{}
	tp.install(seg, h.node)
	h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 10*time.Second))
	return h, tp
}

// TestEnvSyncDeadPeer: with nobody on the sync link the demotion holds
// until bulk_timeout, then is lifted, and status says the wait timed out.
func TestEnvSyncDeadPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h, tp := syncHostAlone(t, seg)
		step(seg, 9*time.Second)
		if st := h.status(); st.Demotion.Sync != 32 || st.Sync.Bulk.Synced || lastDemote(t, tp) != 32 {
			t.Fatalf("before bulk_timeout: demotion %+v, synced %v, advert %d; want 32", st.Demotion, st.Sync.Bulk.Synced, lastDemote(t, tp))
		}
		step(seg, 3*time.Second)
		st := h.status()
		if st.Demotion.Sync != 0 || !st.Sync.Bulk.Synced || !st.Sync.Bulk.TimedOut || lastDemote(t, tp) != 0 {
			t.Errorf("after bulk_timeout: demotion %+v, bulk %+v, advert %d; want 0, synced and timed out",
				st.Demotion, st.Sync.Bulk, lastDemote(t, tp))
		}

		// The peer comes: we ask for its table again, and the complete
		// table ends the failure (timed_out, and sync_bulk meanwhile).
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 5)
		n := len(tp.adverts())
		startSyncPeer(t, h.syncLink, 1, pk, 0)
		if !stepUntil(seg, 30*time.Second, func() bool { return !h.status().Sync.Bulk.TimedOut }) {
			t.Fatalf("a complete table from the peer did not clear timed_out: %+v", h.status().Sync.Bulk)
		}
		step(seg, 2*time.Second)
		st = h.status()
		var during []uint8
		for _, a := range tp.adverts()[n:] {
			during = append(during, a.Demote)
		}
		// Between the peer's coming and its table: sync_bulk (a live
		// peer whose table we lack should rather be master).
		if !slices.Contains(during, 1) {
			t.Errorf("adverts while the peer came %v: want one with sync_bulk's demotion 1", during)
		}
		if lastDemote(t, tp) != 0 || hasSource(st.VHIDs[0].DemotionSources, "carp", "sync_bulk", 1) || st.Sync.FlowsPeer != 5 {
			t.Errorf("after the peer's table: advert %d, sources %+v, %d flows from the peer; want 0, no sync_bulk, 5",
				lastDemote(t, tp), st.VHIDs[0].DemotionSources, st.Sync.FlowsPeer)
		}
	})
}

// TestEnvSyncWrongKey: a peer with another key is, to us, noise on the
// link: its frames are dropped and counted (drop_auth), none of its flows
// gets in, and the demotion is lifted only at bulk_timeout, as for a dead
// peer (status: timed_out). Frames that fail authentication cannot tell
// a misconfigured peer from anyone else on the link, so they do not hold
// the demotion; only authenticated ones do (see the test below).
func TestEnvSyncWrongKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		seg.Add("listener", carp.Params{})
		var tp tap
		tp.install(seg, h.node)
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 20)
		startSyncPeerKey(t, h.syncLink, 1, pk, 0, "0e4b7a91c3d25f6807a1b9e3c5d7f0214b6d8e0a2c4e6f8193b5d7f9a1c3e5f7")
		h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 10*time.Second))
		step(seg, 9*time.Second)
		st := h.status()
		if st.Demotion.Sync != 32 || st.Sync.Bulk.Synced || st.Sync.Established || st.Sync.Counters.DropAuth == 0 {
			t.Fatalf("before bulk_timeout: demotion %+v, synced %v, established %v, drop_auth %d; want 32, no session, drops counted",
				st.Demotion, st.Sync.Bulk.Synced, st.Sync.Established, st.Sync.Counters.DropAuth)
		}
		step(seg, 3*time.Second)
		st = h.status()
		if st.Demotion.Sync != 0 || !st.Sync.Bulk.TimedOut || lastDemote(t, &tp) != 0 {
			t.Errorf("after bulk_timeout: demotion %+v, bulk %+v, advert %d; want 0, timed out", st.Demotion, st.Sync.Bulk, lastDemote(t, &tp))
		}
		if n := len(h.syncKern.Snapshot()); n != 0 || st.Sync.FlowsPeer != 0 {
			t.Errorf("%d flows in our table (%d from the peer) from a peer with another key, want none", n, st.Sync.FlowsPeer)
		}
	})
}

// TestEnvSyncHandshakeFailingKeepsDemotion: the peer is there (its frames
// authenticate) but refuses our session: it still holds the session of
// our previous run, whose epoch is higher than ours (a clock that went
// back). Past bulk_timeout the demotion stays, status says the handshake
// fails; once the peer lets the old session go, the table comes in and
// the demotion is lifted, not timed out.
func TestEnvSyncHandshakeFailingKeepsDemotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		seg.Add("listener", carp.Params{})
		var tp tap
		tp.install(seg, h.node)
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 20)
		peer := startSyncPeer(t, h.syncLink, 1, pk, 0)
		// Our previous run, with an epoch from a clock far ahead.
		prev := startSyncPeer(t, h.syncLink, 0, h.syncKern, 1<<31)
		if !stepUntil(seg, 10*time.Second, func() bool { return prev.e.Synced() && peer.e.Status().Established }) {
			t.Fatal("the previous run never synced")
		}
		prev.stop()

		h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 3*time.Second))
		step(seg, 8*time.Second)
		st := h.status()
		if st.Demotion.Sync != 32 || st.Sync.Bulk.Synced || !st.Sync.HandshakeFailing || lastDemote(t, &tp) != 32 {
			t.Fatalf("past bulk_timeout, handshake refused: demotion %+v, synced %v, handshake failing %v, advert %d; want 32 kept",
				st.Demotion, st.Sync.Bulk.Synced, st.Sync.HandshakeFailing, lastDemote(t, &tp))
		}
		if !stepUntil(seg, 30*time.Second, func() bool { return h.status().Sync.Bulk.Synced }) {
			t.Fatalf("the peer never took the new session: %+v", h.status().Sync.Status)
		}
		step(seg, 2*time.Second)
		st = h.status()
		if st.Demotion.Sync != 0 || st.Sync.Bulk.TimedOut || lastDemote(t, &tp) != 0 || st.Sync.FlowsPeer != 20 {
			t.Errorf("after the session came up: demotion %+v, bulk %+v, advert %d, %d flows from the peer; want 0, the 20 in",
				st.Demotion, st.Sync.Bulk, lastDemote(t, &tp), st.Sync.FlowsPeer)
		}
	})
}

// TestEnvSyncTakeover: a backup that holds the peer's flows takes them as
// its own (Takeover) when it becomes master.
func TestEnvSyncTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		seg.VHID, seg.Password, seg.VIP = 1, "pw", pfx("10.0.0.1/24")
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		other := seg.Add("other", carp.Params{AdvBase: 1, AdvSkew: 0})
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 20)
		startSyncPeer(t, h.syncLink, 1, pk, 0)
		seg.Start(other)
		h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 100, "pw", "10.0.0.1/24")), 30*time.Second))
		if !stepUntil(seg, 10*time.Second, func() bool { st := h.status(); return st.Sync.Bulk.Synced && st.Sync.FlowsPeer == 20 }) {
			t.Fatalf("the peer's table never came in: %+v", h.status().Sync.Status)
		}
		step(seg, 2*time.Second)
		if s := h.vhost("dev0", 1).State; s != "BACKUP" {
			t.Fatalf("me is %s, want BACKUP", s)
		}
		if n := h.status().Sync.FlowsLocal; n != 0 {
			t.Fatalf("a backup replicates %d flows, want none", n)
		}
		seg.Stop(other)
		step(seg, 2*time.Second)
		if s := h.vhost("dev0", 1).State; s != "MASTER" {
			t.Fatalf("me is %s after the master stopped, want MASTER", s)
		}
		if !stepUntil(seg, 2*time.Second, func() bool { return h.status().Sync.FlowsLocal == 20 }) {
			t.Errorf("after the takeover we replicate %d flows, want the peer's 20 adopted", h.status().Sync.FlowsLocal)
		}
	})
}

// TestSameSyncEveryField: sameSync tells apart two sync configurations
// that differ in any one field (a new field of config.Sync fails this
// until sameSync compares it), and reloads of the same one are the same.
func TestSameSyncEveryField(t *testing.T) {
	base := *syncCfg(config.Default(), time.Minute)
	base.Sync.Filter.Include = []netip.Prefix{pfx("192.168.1.0/24")}
	if !sameSync(base.Sync, base.Sync) {
		t.Fatal("a configuration differs from itself")
	}
	orig := base.Sync
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(netip.Addr{}) {
				walk(f, name+".")
				continue
			}
			old := reflect.New(f.Type()).Elem()
			old.Set(f)
			switch {
			case f.Type() == reflect.TypeOf(netip.Addr{}):
				f.Set(reflect.ValueOf(netip.MustParseAddr("10.9.9.9")))
			case f.Kind() == reflect.Bool:
				f.SetBool(!f.Bool())
			case f.Kind() == reflect.String:
				f.SetString(f.String() + "x")
			case f.CanUint():
				f.SetUint(f.Uint() + 1)
			case f.CanInt():
				f.SetInt(f.Int() + 1)
			case f.Kind() == reflect.Slice:
				f.Set(reflect.Append(f, reflect.New(f.Type().Elem()).Elem()))
			default:
				t.Fatalf("%s: a field of kind %s; teach this test (and sameSync) about it", name, f.Kind())
			}
			if sameSync(orig, base.Sync) {
				t.Errorf("sameSync misses a change of %s", name)
			}
			f.Set(old)
		}
	}
	walk(reflect.ValueOf(&base.Sync).Elem(), "")
}

// TestEnvSyncReload: a reload with the same sync configuration keeps the
// engine (and lifts no demotion it should not, adds none); one that
// changes it starts a new engine on a new socket, without demoting CARP
// again, and the new session gets the peer's table again.
func TestEnvSyncReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		seg.Add("listener", carp.Params{})
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 5)
		startSyncPeer(t, h.syncLink, 1, pk, 0)
		cfg := syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 30*time.Second)
		h.start(cfg)
		if !stepUntil(seg, 10*time.Second, func() bool { return h.status().Sync.Bulk.Synced }) {
			t.Fatalf("the peer's table never came in: %+v", h.status().Sync.Status)
		}
		engine := func() *ctsync.Engine {
			var e *ctsync.Engine
			if err := h.d.do(func() {
				if h.d.sync != nil {
					e = h.d.sync.engine
				}
			}); err != nil {
				t.Fatal(err)
			}
			return e
		}
		first, conn := engine(), h.syncLink.End(0)

		same := *cfg
		same.Sync.Filter.Include = append([]netip.Prefix(nil), cfg.Sync.Filter.Include...)
		h.reload(&same)
		step(seg, time.Second)
		if engine() != first || h.syncLink.End(0) != conn {
			t.Fatal("a reload with the same sync configuration restarted the engine")
		}

		changed := *cfg
		changed.Sync.Window = 100 * time.Millisecond
		h.reload(&changed)
		if !stepUntil(seg, 10*time.Second, func() bool {
			e := engine()
			return e != nil && e != first && e.Status().Bulk.Synced && e.Status().Bulk.Received == 5
		}) {
			t.Fatalf("no new engine with the peer's table after the change: %+v", h.status().Sync.Status)
		}
		if h.syncLink.End(0) == conn {
			t.Error("the new engine runs on the old socket")
		}
		if st := h.status(); st.Demotion.Sync != 0 {
			t.Errorf("the restarted engine demotes CARP again: %+v", st.Demotion)
		}
	})
}

// TestEnvSyncBulkFollowsPeer: after a failed initial transfer, sync_bulk
// follows the engine by itself, with no status call to recompute it: it
// rises when the peer comes (a live peer whose table we lack) and falls
// when the peer's table is complete.
func TestEnvSyncBulkFollowsPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h, tp := syncHostAlone(t, seg)
		step(seg, 12*time.Second) // bulk_timeout passed, nobody there
		if d := lastDemote(t, tp); d != 0 {
			t.Fatalf("after bulk_timeout with no peer: advert demotion %d, want 0", d)
		}
		// A big table, paced by the peer's bandwidth cap (100 kB/s), keeps
		// its bulk under way for a few seconds.
		pk := ctsynctest.NewKernel()
		peerFlows(pk, 20000)
		n := len(tp.adverts())
		key, err := wire.KeyFromConfig(syncTestKey)
		if err != nil {
			t.Fatal(err)
		}
		runSyncPeer(t, h.syncLink, 1, pk, ctsync.Config{Key: key, Name: "peer", Peer: syncAddrMe, Window: 200 * time.Millisecond,
			Refresh: time.Minute, BulkTimeout: time.Minute, Bandwidth: 100_000})
		step(seg, 2500*time.Millisecond)
		var during []uint8
		for _, a := range tp.adverts()[n:] {
			during = append(during, a.Demote)
		}
		if !slices.Contains(during, 1) {
			t.Errorf("adverts after the peer came %v: want sync_bulk's 1 without a status call", during)
		}
		for i := 0; i < 300 && len(h.syncKern.Snapshot()) < 20000; i++ {
			step(seg, 100*time.Millisecond)
		}
		step(seg, 2*time.Second)
		if d := lastDemote(t, tp); d != 0 {
			t.Errorf("after the peer's table (%d flows): advert demotion %d, want 0", len(h.syncKern.Snapshot()), d)
		}
	})
}
