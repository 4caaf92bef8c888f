package daemon

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
	"github.com/carpd/carpd/internal/demote"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/track"
	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/json"
)

// inGroups is vhid v in the demotion groups gs (besides carp).
func inGroups(v config.VHID, gs ...string) config.VHID {
	v.Groups = gs
	return v
}

func sourceNames(srcs []demote.Source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.Group+"/"+s.Name)
	}
	return out
}

func setReq(group, source string, value, ttl int) Request {
	return Request{Method: "demote", Group: group, Source: source, Set: &value, TTL: ttl}
}

// TestEnvDemotionGroups: a source of group wan demotes the vhids in wan
// and no other; the group going from 0 to non-zero makes its members
// advertise the new demotion at once (not at their next advert); status
// lists the groups, each vhid's groups and the sources that count for
// it; a relative demotion of a group (demote -g) adds to it.
func TestEnvDemotionGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		seg.Add("listener", carp.Params{})
		var tp tap
		tp.install(seg, h.node)
		h.start(cfgWith(h.next, inGroups(vhid("dev0", 1, 0, "pw", "10.0.0.1/24"), "wan"),
			vhid("dev0", 2, 0, "pw", "10.0.0.2/24")))
		seg.Run(5 * time.Second)
		seg.Run(300 * time.Millisecond) // between two adverts
		if got := demotions(h); !maps2Equal(got, map[uint8]uint8{1: 0, 2: 0}) {
			t.Fatalf("start: demotions %v", got)
		}

		n := len(tp.adverts())
		if _, err := h.d.Handle(setReq("wan", "mwan3", 2, 0)); err != nil {
			t.Fatal(err)
		}
		seg.Run(10 * time.Millisecond)
		var now1 []carp.Advert
		for _, a := range tp.adverts()[n:] {
			if a.VHID == 1 {
				now1 = append(now1, a)
			}
		}
		if len(now1) != 1 || now1[0].Demote != 2 {
			t.Errorf("within 10 ms of wan 0 → 2, vhid 1 advertised %+v; want one advert with demotion 2", now1)
		}
		seg.Run(3 * time.Second)
		if got := demotions(h); !maps2Equal(got, map[uint8]uint8{1: 2, 2: 0}) {
			t.Errorf("wan source: demotions %v, want vhid 1 (in wan) 2, vhid 2 0", got)
		}
		for _, a := range tp.adverts()[n:] {
			if want := map[uint8]uint8{1: 2, 2: 0}[a.VHID]; a.Demote != want {
				t.Fatalf("vhid %d advertised %d, want %d", a.VHID, a.Demote, want)
			}
		}

		// Relative, for a group: adds to its manual source.
		if err := h.d.Demote(0, "", "wan", 3); err != nil {
			t.Fatal(err)
		}
		if err := h.d.Demote(0, "", "", 1); err != nil {
			t.Fatal(err)
		}
		seg.Run(time.Second)
		if got := demotions(h); !maps2Equal(got, map[uint8]uint8{1: 6, 2: 1}) {
			t.Errorf("with demote -g wan 3 and demote 1: demotions %v, want 6 and 1", got)
		}
		st := h.status()
		if st.Demotion.Manual != 1 {
			t.Errorf("demotion.manual %d, want 1 (carp's)", st.Demotion.Manual)
		}
		var groups []string
		for _, g := range st.Demotion.Groups {
			groups = append(groups, g.Name)
			want := map[string]int{"carp": 1, "wan": 5}[g.Name]
			if g.Demotion != want || len(g.Sources) == 0 {
				t.Errorf("group %s: demotion %d, sources %+v; want %d", g.Name, g.Demotion, g.Sources, want)
			}
		}
		if !slices.Equal(groups, []string{"carp", "wan"}) {
			t.Errorf("groups %q", groups)
		}
		v1, v2 := h.vhost("dev0", 1), h.vhost("dev0", 2)
		if !slices.Equal(v1.Groups, []string{"carp", "wan"}) || !slices.Equal(v2.Groups, []string{"carp"}) {
			t.Errorf("vhid groups %q, %q", v1.Groups, v2.Groups)
		}
		if got := sourceNames(v1.DemotionSources); !slices.Equal(got, []string{"carp/manual", "wan/manual", "wan/mwan3"}) {
			t.Errorf("vhid 1 sources %q", got)
		}
		if got := sourceNames(v2.DemotionSources); !slices.Equal(got, []string{"carp/manual"}) {
			t.Errorf("vhid 2 sources %q", got)
		}
		for _, s := range v1.DemotionSources {
			if s.Since.IsZero() || s.Reason == "" || s.Value == 0 || !s.Expires.IsZero() {
				t.Errorf("source %+v: want since, reason, value, no expiry", s)
			}
		}

		// Value 0 removes the source.
		if _, err := h.d.Handle(setReq("wan", "mwan3", 0, 0)); err != nil {
			t.Fatal(err)
		}
		seg.Run(time.Second)
		if got := sourceNames(h.vhost("dev0", 1).DemotionSources); !slices.Equal(got, []string{"carp/manual", "wan/manual"}) {
			t.Errorf("after set 0: vhid 1 sources %q", got)
		}
	})
}

func maps2Equal(a, b map[uint8]uint8) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestEnvSourceTTL: a source set with a ttl expires by itself on the
// daemon's clock; setting it again renews it.
func TestEnvSourceTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		seg.Add("listener", carp.Params{})
		var tp tap
		tp.install(seg, h.node)
		h.start(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)
		set := seg.Now()
		if _, err := h.d.Handle(setReq("", "bird", 4, 30)); err != nil {
			t.Fatal(err)
		}
		seg.Run(time.Second)
		v := h.vhost("dev0", 1)
		if v.Demotion != 4 || len(v.DemotionSources) != 1 || !v.DemotionSources[0].Expires.Equal(set.Add(30*time.Second)) {
			t.Fatalf("after set: demotion %d, sources %+v; want 4, carp/bird expiring at +30 s", v.Demotion, v.DemotionSources)
		}
		// Renewed at +20 s: expires at +50 s.
		seg.Run(19 * time.Second)
		if _, err := h.d.Handle(setReq("carp", "bird", 4, 30)); err != nil {
			t.Fatal(err)
		}
		seg.Run(29 * time.Second) // +49 s
		if v := h.vhost("dev0", 1); v.Demotion != 4 {
			t.Errorf("at +49 s: demotion %d, want the renewed 4", v.Demotion)
		}
		seg.Run(2 * time.Second) // +51 s
		v = h.vhost("dev0", 1)
		if v.Demotion != 0 || len(v.DemotionSources) != 0 || tp.adverts()[len(tp.adverts())-1].Demote != 0 {
			t.Errorf("at +51 s: demotion %d, sources %+v; want it expired", v.Demotion, v.DemotionSources)
		}
	})
}

// TestSetExternalRefused: names and values an outside program may not
// set, each with a clear error; nothing is set.
func TestSetExternalRefused(t *testing.T) {
	cfg := config.Default()
	cfg.Tracks = []config.Track{{Name: "wan_ping", Type: config.TrackPing, Group: "wan"}}
	lan := vhid("dev0", 1, 0, "pw", "10.0.0.1/24")
	lan.Groups = []string{"lan"}
	cfg.VHIDs = []config.VHID{lan}
	d := New(cfg, Options{})
	d.env.Clock = carptest.NewClock(carptest.Epoch)
	for _, tc := range []struct {
		name         string
		group, src   string
		value, ttl   int
		wantContains string
	}{
		{"builtin link", "carp", "link:eth0", 1, 0, "carpd's own"},
		{"builtin maintenance", "carp", "maintenance", 1, 0, "carpd's own"},
		{"builtin sync", "", "sync", 1, 0, "carpd's own"},
		{"builtin sync_link", "", "sync_link", 1, 0, "carpd's own"},
		{"builtin send_errors", "", "send_errors", 1, 0, "carpd's own"},
		{"tracker's", "wan", "wan_ping", 1, 0, "belongs to the tracker"},
		{"bad group", "w an", "x", 1, 0, "group"},
		{"long source", "wan", "abcdefghijklmnopqrstuvwxyz0123456", 1, 0, "source"},
		{"empty source", "wan", "", 1, 0, "source"},
		{"negative", "wan", "x", -1, 0, "want 0 to 255"},
		{"too big", "wan", "x", 256, 0, "want 0 to 255"},
		{"ttl negative", "wan", "x", 1, -1, "ttl"},
		{"ttl too long", "wan", "x", 1, 86401, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.setExternal(tc.group, tc.src, tc.value, tc.ttl)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantContains) {
				t.Errorf("error %v, want invalid argument with %q", err, tc.wantContains)
			}
		})
	}
	if g := d.sources.Groups(); len(g) != 0 {
		t.Errorf("refused requests set sources in %q", g)
	}
	// The tracker's name in another group is free; the limits are fine.
	if err := d.setExternal("lan", "wan_ping", 255, 86400); err != nil {
		t.Errorf("lan/wan_ping: %v", err)
	}
	// Request shapes the control socket refuses.
	for _, req := range []Request{
		{Method: "demote", Source: "x"},
		{Method: "demote", Set: new(int)},
		{Method: "demote", Source: "x", Set: new(int), By: 1},
		{Method: "demote", Source: "x", Set: new(int), VHID: 1},
		{Method: "demote", By: 1, TTL: 5},
	} {
		if err := checkDemoteRequest(req); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want invalid argument", req, err)
		}
	}
	if err := d.demote(1, "", "wan", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("demote -g with --vhid: %v", err)
	}
	// A group no vhid or tracker is in is a typo: refused, naming the
	// groups there are; a name the configuration could not hold (':' is
	// fine in a source name, not in a group's) is invalid.
	for _, g := range []string{"lna", "wan2"} {
		if err := d.demote(0, "", g, 1); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "groups: carp lan wan") {
			t.Errorf("demote -g %s: %v, want not found listing carp lan wan", g, err)
		}
		if err := d.setExternal(g, "bird", 1, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("demote -g %s --source bird: %v, want not found", g, err)
		}
	}
	if err := d.demote(0, "", "a:b", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("demote -g a:b: %v, want invalid argument", err)
	}
	if g := d.sources.Groups(); len(g) != 1 || g[0] != "lan" {
		t.Errorf("groups with sources %q, want only lan (set above)", g)
	}
	// The groups that exist take it: carp, a vhid's, a tracker's.
	for _, g := range []string{"carp", "lan", "wan"} {
		if err := d.demote(0, "", g, 1); err != nil {
			t.Errorf("demote -g %s: %v", g, err)
		}
	}
}

// TestEnvPeerDemotion: the backup shows the demotion and advskew the
// master advertises, next to its own.
func TestEnvPeerDemotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a := newHost(t, seg, "a", config.Default())
		b := newHost(t, seg, "b", config.Default())
		a.start(cfgWith(a.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)
		b.start(cfgWith(b.next, vhid("dev0", 1, 100, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)
		if vb := b.vhost("dev0", 1); vb.State != "BACKUP" || vb.PeerDemotion == nil || *vb.PeerDemotion != 0 ||
			vb.PeerAdvSkew == nil || *vb.PeerAdvSkew != 0 {
			t.Fatalf("b: %s, peer demotion %v, advskew %v; want BACKUP, 0, 0", vb.State, vb.PeerDemotion, vb.PeerAdvSkew)
		}
		if va := a.vhost("dev0", 1); va.PeerDemotion != nil {
			t.Errorf("a heard no advert, but shows peer demotion %d", *va.PeerDemotion)
		}
		if err := a.d.Demote(0, "", "", 7); err != nil {
			t.Fatal(err)
		}
		seg.Run(3 * time.Second)
		vb := b.vhost("dev0", 1)
		if vb.PeerDemotion == nil || *vb.PeerDemotion != 7 {
			t.Errorf("b after a's demotion: peer demotion %v, want 7 (state %s)", vb.PeerDemotion, vb.State)
		}
	})
}

// failingIface makes a port's sends fail while fail is set.
type failingIface struct {
	Iface
	fail *atomic.Bool
}

func (f failingIface) Send(p []byte, dst netip.Addr) error {
	if f.fail.Load() {
		return errors.New("no buffer space available")
	}
	return f.Iface.Send(p, dst)
}

// TestEnvSendErrorsSource: a vhid that cannot send demotes itself by one,
// and status lists it as its own source send_errors, on top of the
// group's; it goes when sending works again.
func TestEnvSendErrorsSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		var fail atomic.Bool
		h.envHook = func(e *Env) {
			open := e.OpenIface
			e.OpenIface = func(name string, addrs carp.IfaceAddrs, log *logx.Logger) (Iface, error) {
				i, err := open(name, addrs, log)
				if err != nil {
					return nil, err
				}
				return failingIface{i, &fail}, nil
			}
		}
		h.start(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")))
		seg.Run(5 * time.Second)
		if _, err := h.d.Handle(setReq("", "x", 2, 0)); err != nil {
			t.Fatal(err)
		}
		fail.Store(true)
		seg.Run(5 * time.Second)
		v := h.vhost("dev0", 1)
		if got := sourceNames(v.DemotionSources); v.Demotion != 3 || !slices.Equal(got, []string{"carp/x", "/send_errors"}) {
			t.Errorf("failing sends: demotion %d, sources %q; want 3, carp/x and the vhid's send_errors", v.Demotion, got)
		}
		fail.Store(false)
		seg.Run(5 * time.Second)
		v = h.vhost("dev0", 1)
		if got := sourceNames(v.DemotionSources); v.Demotion != 2 || !slices.Equal(got, []string{"carp/x"}) {
			t.Errorf("sends work again: demotion %d, sources %q; want 2, carp/x", v.Demotion, got)
		}
	})
}

// TestEnvSyncLinkSource: while the sync link is down every vhid is
// demoted by one (sync_link).
func TestEnvSyncLinkSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.syncLink = ctsynctest.NewLink(syncAddrMe, syncAddrPeer)
		seg.Add("listener", carp.Params{})
		h.start(syncCfg(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")), 3*time.Second))
		step(seg, 5*time.Second)
		if v := h.vhost("dev0", 1); v.Demotion != 0 || len(v.DemotionSources) != 0 {
			t.Fatalf("no peer, past bulk_timeout: demotion %d, sources %+v; want 0, none", v.Demotion, v.DemotionSources)
		}
		h.links.Set("sync0", false)
		step(seg, time.Second)
		if v := h.vhost("dev0", 1); v.Demotion != 1 || !hasSource(v.DemotionSources, "carp", "sync_link", 1) {
			t.Errorf("sync link down: demotion %d, sources %+v; want 1 (sync_link)", v.Demotion, v.DemotionSources)
		}
		h.links.Set("sync0", true)
		step(seg, time.Second)
		if v := h.vhost("dev0", 1); v.Demotion != 0 || len(v.DemotionSources) != 0 {
			t.Errorf("sync link up: demotion %d, sources %+v; want 0", v.Demotion, v.DemotionSources)
		}
	})
}

// fakeTracker is a tracker the test drives: it reports what the test
// says, from the test's goroutine (as a tracker would from its own).
type fakeTracker struct {
	cfg     config.Track
	report  func(track.Report)
	stopped atomic.Bool
	probes  atomic.Int32
	dead    atomic.Bool // ProbeNow's rounds are bad
	resume  int         // Env.Resume it was started with
	mu      sync.Mutex
	st      track.Status
}

func (f *fakeTracker) Status() track.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeTracker) Stop() { f.stopped.Store(true) }

// ProbeNow runs one round at once: good, or bad (suspect) when the test
// made the tracker's path dead.
func (f *fakeTracker) ProbeNow() {
	f.probes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.st.State == track.StateDown:
	case f.dead.Load():
		f.st.Bad++
		f.st.Suspect = true
	default:
		f.st.Good++
	}
}

// set makes the tracker down (value v) or up, and reports it.
func (f *fakeTracker) set(down bool, v int, reason string, now time.Time) {
	f.mu.Lock()
	f.st.State, f.st.Value, f.st.Reason, f.st.Since, f.st.Suspect = track.StateUp, v, reason, now, false
	if down {
		f.st.State = track.StateDown
	}
	f.mu.Unlock()
	f.report(track.Report{Name: f.cfg.Name, Group: f.cfg.Group, Down: down, Value: v, Reason: reason, Since: now})
}

type fakeTrackers struct {
	mu      sync.Mutex
	started []*fakeTracker
}

func (ft *fakeTrackers) start(_ context.Context, cfg config.Track, env track.Env, report func(track.Report)) Tracker {
	f := &fakeTracker{cfg: cfg, report: report, resume: env.Resume, st: track.Status{Name: cfg.Name, Type: cfg.Type, Group: cfg.Group,
		Weight: cfg.Weight, State: track.StateInit}}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.started = append(ft.started, f)
	return f
}

// last returns the last tracker started for name, and how many were.
func (ft *fakeTrackers) last(name string) (*fakeTracker, int) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var f *fakeTracker
	n := 0
	for _, s := range ft.started {
		if s.cfg.Name == name {
			f = s
			n++
		}
	}
	return f, n
}

// TestEnvTrackers: a tracker going down demotes exactly its group's
// vhids, at once; status lists it; a reload that leaves it unchanged
// keeps it running with its state (and the demotion), one that changes
// it restarts it (a tracker that was down hands its value to the new one
// and the demotion stays: a reload moves nothing), one that removes it
// stops it and its source goes.
func TestEnvTrackers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		var ft fakeTrackers
		h.envHook = func(e *Env) { e.StartTracker = ft.start }
		seg.Add("listener", carp.Params{})
		var tp tap
		tp.install(seg, h.node)
		wanPing := config.Track{Name: "wan_ping", Type: config.TrackPing, Group: "wan", Weight: 1,
			Targets: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}
		lanIf := config.Track{Name: "lan_up", Type: config.TrackInterface, Group: "lan", Weight: 1, Device: "lan"}
		cfg := cfgWith(h.next, inGroups(vhid("dev0", 1, 0, "pw", "10.0.0.1/24"), "wan"),
			inGroups(vhid("dev0", 2, 0, "pw", "10.0.0.2/24"), "lan"))
		cfg.Tracks = []config.Track{wanPing, lanIf}
		h.start(cfg)
		seg.Run(5 * time.Second)
		seg.Run(300 * time.Millisecond)
		wan, n := ft.last("wan_ping")
		if wan == nil || n != 1 {
			t.Fatalf("wan_ping started %d times", n)
		}

		before := len(tp.adverts())
		wan.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(10 * time.Millisecond)
		var at1 []uint8
		for _, a := range tp.adverts()[before:] {
			if a.VHID == 1 {
				at1 = append(at1, a.Demote)
			}
		}
		if !slices.Equal(at1, []uint8{1}) {
			t.Errorf("within 10 ms of wan_ping down, vhid 1 advertised demotions %v, want [1]", at1)
		}
		seg.Run(time.Second)
		if got := demotions(h); !maps2Equal(got, map[uint8]uint8{1: 1, 2: 0}) {
			t.Errorf("wan_ping down: demotions %v, want vhid 1 (wan) 1, vhid 2 (lan) 0", got)
		}
		st := h.status()
		if len(st.Trackers) != 2 || st.Trackers[0].Name != "lan_up" || st.Trackers[1].Name != "wan_ping" ||
			st.Trackers[1].State != track.StateDown {
			t.Errorf("status trackers %+v", st.Trackers)
		}
		if s := h.vhost("dev0", 1).DemotionSources; len(s) != 1 || s[0].Group != "wan" || s[0].Name != "wan_ping" ||
			s[0].Reason != "0 of 1 targets answered for 3 rounds" {
			t.Errorf("vhid 1 sources %+v", s)
		}

		// Reload, trackers unchanged (the config is a new copy): the same
		// tracker runs on, and the demotion stays.
		cfg2 := *cfg
		cfg2.Tracks = []config.Track{lanIf, wanPing}
		h.reload(&cfg2)
		if f, n := ft.last("wan_ping"); f != wan || n != 1 || wan.stopped.Load() {
			t.Errorf("unchanged wan_ping: started %d times, stopped %v", n, wan.stopped.Load())
		}
		if got := demotions(h); got[1] != 1 {
			t.Errorf("after an unchanged reload vhid 1 has demotion %d, want 1", got[1])
		}

		// Changed while down: restarted, resuming from the old one's value;
		// the demotion stays until the new one's rounds say otherwise.
		wanPing.Down = 5
		cfg3 := *cfg
		cfg3.Tracks = []config.Track{wanPing, lanIf}
		before = len(tp.adverts())
		h.reload(&cfg3)
		nw, n := ft.last("wan_ping")
		if n != 2 || !wan.stopped.Load() || nw.stopped.Load() || nw.resume != 1 {
			t.Errorf("changed wan_ping: started %d times, old stopped %v, new resumes from %d (want 1)",
				n, wan.stopped.Load(), nw.resume)
		}
		seg.Run(time.Second)
		if got := demotions(h); got[1] != 1 {
			t.Errorf("after the down tracker changed vhid 1 has demotion %d, want 1 kept", got[1])
		}
		for _, a := range tp.adverts()[before:] {
			if a.VHID == 1 && a.Demote != 1 {
				t.Errorf("vhid 1 advertised demotion %d across the reload, want 1 throughout", a.Demote)
				break
			}
		}
		// A report of the old tracker after it was stopped counts for nothing.
		wan.set(false, 0, "stale", seg.Now())
		seg.Run(time.Second)
		if got := demotions(h); got[1] != 1 {
			t.Errorf("a stopped tracker's report set vhid 1's demotion to %d", got[1])
		}
		nw.set(false, 0, "up again", seg.Now())
		seg.Run(time.Second)
		if got := demotions(h); got[1] != 0 {
			t.Errorf("the new tracker up: vhid 1 demotion %d, want 0", got[1])
		}
		nw.set(true, 1, "down again", seg.Now())
		seg.Run(time.Second)
		if got := demotions(h); got[1] != 1 {
			t.Errorf("the new tracker down: vhid 1 demotion %d, want 1", got[1])
		}
		// Changed while up: nothing to hand over.
		wanPing.Down = 4
		nw.set(false, 0, "up", seg.Now())
		seg.Run(time.Second)
		cfg3b := *cfg
		cfg3b.Tracks = []config.Track{wanPing, lanIf}
		h.reload(&cfg3b)
		if n3, _ := ft.last("wan_ping"); n3.resume != 0 {
			t.Errorf("a tracker changed while up resumes from %d, want 0", n3.resume)
		}
		nw, _ = ft.last("wan_ping")

		// Removed: stopped, its source gone.
		cfg4 := *cfg
		cfg4.Tracks = []config.Track{lanIf}
		h.reload(&cfg4)
		if !nw.stopped.Load() {
			t.Error("removed wan_ping not stopped")
		}
		st = h.status()
		if got := demotions(h); got[1] != 0 || len(st.Trackers) != 1 {
			t.Errorf("after removing wan_ping: vhid 1 demotion %d, trackers %+v", got[1], st.Trackers)
		}
		lan, _ := ft.last("lan_up")
		if lan.stopped.Load() {
			t.Error("lan_up stopped by reloads that kept it")
		}
		h.stop()
		if !lan.stopped.Load() {
			t.Error("lan_up not stopped with the daemon")
		}
	})
}

func TestTrackEventHotplug(t *testing.T) {
	ev := TrackEvent{Name: "wan_ping", Type: "ping", Group: "wan", State: "down", Value: 1, Reason: "0 of 1 targets answered for 3 rounds"}
	want := []string{"ACTION=TRACK_DOWN", "TRACK=wan_ping", "GROUP=wan", "VALUE=1", "REASON=0 of 1 targets answered for 3 rounds"}
	if got := ev.hotplugEnv(); !slices.Equal(got, want) {
		t.Errorf("down: %q", got)
	}
	ev.State, ev.Value = "up", 0
	if got := ev.hotplugEnv(); got[0] != "ACTION=TRACK_UP" || got[3] != "VALUE=0" {
		t.Errorf("up: %q", got)
	}
}

// TestSameTrackEveryField: sameTrack compares every field of config.Track
// (it fails when a field is added and not compared).
func TestSameTrackEveryField(t *testing.T) {
	base := config.Track{Name: "a", Type: "ping", Targets: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Device: "wan",
		Interval: time.Second, Timeout: time.Second, Reliability: 1, Down: 3, Up: 3, Group: "carp", Weight: 1,
		Command: []string{"/bin/true"}, Path: "/tmp/x", Process: "p"}
	if !sameTrack(base, base) {
		t.Fatal("a tracker differs from itself")
	}
	rv := reflect.ValueOf(&base).Elem()
	for i := 0; i < rv.NumField(); i++ {
		c := base
		c.Targets, c.Command = slices.Clone(base.Targets), slices.Clone(base.Command)
		changeField(reflect.ValueOf(&c).Elem().Field(i))
		if sameTrack(base, c) {
			t.Errorf("sameTrack does not compare %s", rv.Type().Field(i).Name)
		}
	}
}

// changeField sets f to a value other than the one TestSameTrackEveryField
// gives it.
func changeField(f reflect.Value) {
	switch {
	case f.Type() == reflect.TypeOf(netip.Addr{}):
		f.Set(reflect.ValueOf(netip.MustParseAddr("10.9.9.9")))
	case f.Kind() == reflect.String:
		f.SetString(f.String() + "x")
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		f.SetInt(f.Int() + 1)
	case f.Kind() == reflect.Slice:
		f.Set(reflect.Append(f, f.Index(0)))
	default:
		panic("changeField: add a case for " + f.Type().String())
	}
}

// TestBulkFailed: sync_bulk counts while the initial transfer has failed
// and the peer is there; a dead peer demotes nothing (the e2e test
// TestSyncPeerDeadDemotionBounded holds a lone router undemoted).
func TestBulkFailed(t *testing.T) {
	for _, tc := range []struct {
		timedOut, peerUp, want bool
	}{
		{false, false, false},
		{false, true, false},
		{true, false, false},
		{true, true, true},
	} {
		var st ctsync.Status
		st.Bulk.TimedOut, st.PeerUp = tc.timedOut, tc.peerUp
		if got := bulkFailed(st); got != tc.want {
			t.Errorf("timed out %v, peer up %v: %v, want %v", tc.timedOut, tc.peerUp, got, tc.want)
		}
	}
}

// TestEnvUbusDemote: ubus demote {group, source, set, ttl} sets a source
// (numbers as strings too), {group, by} is relative, and what the daemon
// refuses is INVALID_ARGUMENT.
func TestEnvUbusDemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		seg.Add("listener", carp.Params{})
		h.start(cfgWith(h.next, inGroups(vhid("dev0", 1, 0, "pw", "10.0.0.1/24"), "wan")))
		seg.Run(5 * time.Second)
		b := &ubusBridge{d: h.d, log: logx.New(logx.DiscardHandler)}
		call := func(args string) error {
			_, err := b.handler("demote")(context.Background(), json.RawMessage(args))
			return err
		}
		if err := call(`{"group":"wan","source":"mwan3","set":"3","ttl":60,"ubus_rpc_session":"x"}`); err != nil {
			t.Fatal(err)
		}
		if err := call(`{"group":"wan","by":2}`); err != nil {
			t.Fatal(err)
		}
		seg.Run(time.Second)
		v := h.vhost("dev0", 1)
		if got := sourceNames(v.DemotionSources); v.Demotion != 5 || !slices.Equal(got, []string{"wan/manual", "wan/mwan3"}) {
			t.Errorf("demotion %d, sources %q; want 5, wan/manual and wan/mwan3", v.Demotion, got)
		}
		for _, args := range []string{
			`{}`,                                 // neither by nor set
			`{"by":1,"source":"x","set":1}`,      // both
			`{"source":"link:eth0","set":1}`,     // carpd's own
			`{"source":"x","set":256}`,           // out of range
			`{"source":"x","set":1,"ttl":86401}`, // ttl out of range
			`{"group":"wan","vhid":1,"by":1}`,    // group and vhid
			`{"source":"a b","set":1}`,           // bad name
			`{"set":1}`,                          // no source
		} {
			if err := call(args); err == nil || ubus.StatusOf(err) != ubus.StatusInvalidArgument {
				t.Errorf("%s: %v, want INVALID_ARGUMENT", args, err)
			}
		}
		seg.Run(61 * time.Second)
		if got := sourceNames(h.vhost("dev0", 1).DemotionSources); !slices.Equal(got, []string{"wan/manual"}) {
			t.Errorf("after the ttl: sources %q, want wan/manual", got)
		}
	})
}

// TestEnvSharedFailureMovesNothing: two routers whose trackers see the
// same upstream die are demoted alike, and the master stays master (CARP
// compares demotion first); when only the master's path is down, the
// backup (preempt on) takes over, and takes nothing back until its own
// path is down too.
func TestEnvSharedFailureMovesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		base := config.Default()
		base.Global.Preempt = true
		a := newHost(t, seg, "a", base)
		cb := *base
		b := newHost(t, seg, "b", &cb)
		var fa, fb fakeTrackers
		a.envHook = func(e *Env) { e.StartTracker = fa.start }
		b.envHook = func(e *Env) { e.StartTracker = fb.start }
		wan := config.Track{Name: "wan_ping", Type: config.TrackPing, Group: "carp", Weight: 1}
		ca := cfgWith(a.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24"))
		ca.Tracks = []config.Track{wan}
		cbb := cfgWith(b.next, vhid("dev0", 1, 100, "pw", "10.0.0.1/24"))
		cbb.Tracks = []config.Track{wan}
		a.start(ca)
		seg.Run(5 * time.Second)
		b.start(cbb)
		seg.Run(5 * time.Second)
		states := func() string { return a.vhost("dev0", 1).State + "/" + b.vhost("dev0", 1).State }
		if s := states(); s != "MASTER/BACKUP" {
			t.Fatalf("start: %s", s)
		}
		ta, _ := fa.last("wan_ping")
		tb, _ := fb.last("wan_ping")

		// Both upstreams die.
		ta.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		tb.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(10 * time.Second)
		if s := states(); s != "MASTER/BACKUP" || a.vhost("dev0", 1).Demotion != 1 || b.vhost("dev0", 1).Demotion != 1 {
			t.Errorf("shared failure: %s, demotions %d and %d; want MASTER/BACKUP, 1 and 1", s,
				a.vhost("dev0", 1).Demotion, b.vhost("dev0", 1).Demotion)
		}
		if got := len(transitionsOf(a.status(), 1)); got != 2 {
			t.Errorf("a made %d transitions, want the 2 of its start", got)
		}

		// b's path comes back, a's does not: b takes over, after the
		// recovery hold ((up+1) × interval = 4 s) and a confirmation.
		tb.set(false, 0, "1 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(4 * time.Second)
		if s := states(); s != "MASTER/BACKUP" || !strings.Contains(b.vhost("dev0", 1).Held, "wan_ping recovered") {
			t.Errorf("b recovered 4 s ago: %s, b held %q; want MASTER/BACKUP, held", s, b.vhost("dev0", 1).Held)
		}
		seg.Run(2 * time.Second)
		if s := states(); s != "BACKUP/MASTER" {
			t.Errorf("only a's path down: %s, want BACKUP/MASTER", s)
		}
		if vb := b.vhost("dev0", 1); vb.PeerDemotion == nil || *vb.PeerDemotion != 1 {
			t.Errorf("b's peer demotion %v, want a's 1", vb.PeerDemotion)
		}
	})
}
