package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/logx"
)

// fakeServices is Env.RunService: it records each action ("dhcp start")
// and, for a master action, whether the host held its VIPs when it ran.
// An action with a channel in block waits for it to be closed.
type fakeServices struct {
	h     *host
	mu    sync.Mutex
	calls []string
	noVIP []string // master actions run before the VIPs were added
	block map[string]chan struct{}
}

func (f *fakeServices) run(ctx context.Context, s config.Service, action string) (string, error) {
	call := s.Name + " " + action
	f.mu.Lock()
	f.calls = append(f.calls, call)
	ch := f.block[call]
	f.mu.Unlock()
	if action == s.Master && len(f.h.port("dev0").Held()) == 0 {
		f.mu.Lock()
		f.noVIP = append(f.noVIP, call)
		f.mu.Unlock()
	}
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return "fake", ctx.Err()
		}
	}
	return "fake", nil
}

func (f *fakeServices) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// withServices makes h run its services through a fakeServices.
func withServices(h *host) *fakeServices {
	f := &fakeServices{h: h, block: map[string]chan struct{}{}}
	h.envHook = func(e *Env) {
		e.RunService = f.run
		open := e.OpenAddresses
		e.OpenAddresses = func(name string, log *logx.Logger) (Addresses, error) {
			a, err := open(name, log)
			return slowAdd{a, h.seg.Clock}, err
		}
	}
	return f
}

// slowAdd takes a while to add the VIPs, as netlink and the gratuitous
// ARP burst may: a master action must wait for it.
type slowAdd struct {
	Addresses
	clk carp.Clock
}

func (s slowAdd) Add(ctx context.Context, p []netip.Prefix) error {
	<-s.clk.NewTimer(100 * time.Millisecond).C()
	return s.Addresses.Add(ctx, p)
}

func lanVHID(skew uint8) config.VHID {
	v := vhid("dev0", 1, skew, "carptest", "10.0.0.1/24")
	v.Name = "lan"
	return v
}

func svc(name string, vhids ...string) config.Service {
	s := config.DefaultService(name)
	s.Unit, s.VHIDs = "unit-"+name, vhids
	return s
}

func withSvcs(base *config.Config, v config.VHID, ss ...config.Service) *config.Config {
	c := cfgWith(base, v)
	c.Services = ss
	return c
}

func serviceOf(t *testing.T, h *host, name string) ServiceStatus {
	t.Helper()
	for _, s := range h.status().Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q in status", name)
	return ServiceStatus{}
}

// TestEnvServiceRoles: the master's service runs (started once its VIPs
// are added), the backup's is stopped at start as soon as its role is
// known (reconcile), and when the master stops (bow-out) its service is
// stopped and the new master's started. Status shows role and last action.
func TestEnvServiceRoles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a := newHost(t, seg, "a", config.Default())
		b := newHost(t, seg, "b", config.Default())
		fa, fb := withServices(a), withServices(b)
		a.start(withSvcs(a.next, lanVHID(0), svc("dhcp", "lan")))
		if s := serviceOf(t, a, "dhcp"); s.Role != "unknown" && s.Role != "backup" {
			t.Errorf("a's role at start %q", s.Role)
		}
		b.start(withSvcs(b.next, lanVHID(100), svc("dhcp")))
		seg.Run(5 * time.Second)
		synctest.Wait()

		if got := fa.got(); !slices.Equal(got, []string{"dhcp stop", "dhcp start"}) {
			t.Errorf("a ran %v, want stop (backup at start), then start", got)
		}
		if got := fb.got(); !slices.Equal(got, []string{"dhcp stop"}) {
			t.Errorf("b ran %v, want only stop", got)
		}
		if len(fa.noVIP) != 0 {
			t.Errorf("master actions before the VIPs were added: %v", fa.noVIP)
		}
		sa, sb := serviceOf(t, a, "dhcp"), serviceOf(t, b, "dhcp")
		if sa.Role != "master" || sa.Action != "start" || sa.Result != "ok" || sa.Backend != "fake" || sa.Time.IsZero() ||
			sa.Service != "unit-dhcp" || !slices.Equal(sa.VHIDs, []string{"lan"}) {
			t.Errorf("a's service status %+v", sa)
		}
		if sb.Role != "backup" || sb.Action != "stop" || sb.Result != "ok" || !slices.Equal(sb.VHIDs, []string{"lan"}) {
			t.Errorf("b's service status %+v", sb)
		}

		a.stop()
		seg.Run(2 * time.Second)
		synctest.Wait()
		if got := fa.got(); !slices.Equal(got, []string{"dhcp stop", "dhcp start", "dhcp stop"}) {
			t.Errorf("a ran %v, want its service stopped when it stopped", got)
		}
		if got := fb.got(); !slices.Equal(got, []string{"dhcp stop", "dhcp start"}) {
			t.Errorf("b ran %v, want its service started after the takeover", got)
		}
		if len(fb.noVIP) != 0 {
			t.Errorf("b's master actions before the VIPs were added: %v", fb.noVIP)
		}
	})
}

// blockedStopHost is a host whose "dhcp stop" runs until release is
// closed.
func blockedStopHost(t *testing.T, seg *carptest.Segment) (me *host, f *fakeServices, release chan struct{}) {
	me = newHost(t, seg, "me", config.Default())
	f = withServices(me)
	release = make(chan struct{})
	f.block["dhcp stop"] = release
	return me, f, release
}

// TestEnvServiceCoalesce: while an action runs, the role flaps to master
// and back: nothing more runs. A role that stays changed runs once.
func TestEnvServiceCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		me, f, release := blockedStopHost(t, seg)
		peer := seg.Add("peer", carp.Params{AdvBase: 1, AdvSkew: 0, Preempt: true})
		cfg := withSvcs(me.next, lanVHID(100), svc("dhcp"))
		cfg.Services[0].Timeout = time.Hour
		me.start(cfg)
		seg.Run(5 * time.Second) // me: BACKUP (stop, held), then MASTER
		if s := me.vhost("dev0", 1).State; s != "MASTER" {
			t.Fatalf("me is %s", s)
		}
		seg.Start(peer) // preempts: me back to BACKUP
		seg.Run(3 * time.Second)
		if s := me.vhost("dev0", 1).State; s != "BACKUP" {
			t.Fatalf("me is %s after the peer came", s)
		}
		if st := serviceOf(t, me, "dhcp"); st.Result != "running" || st.Action != "stop" || st.Role != "backup" {
			t.Errorf("status while the stop runs: %+v", st)
		}
		close(release)
		synctest.Wait()
		if got := f.got(); !slices.Equal(got, []string{"dhcp stop"}) {
			t.Errorf("ran %v, want only the first stop (the flap to master and back coalesced)", got)
		}
		seg.Crash(peer)
		seg.Run(5 * time.Second)
		synctest.Wait()
		if got := f.got(); !slices.Equal(got, []string{"dhcp stop", "dhcp start"}) {
			t.Errorf("ran %v, want start after the peer crashed", got)
		}
	})
}

// TestEnvServiceReload: a reload starts a new service in the current role
// and runs a changed one's action again; an unchanged one runs nothing, a
// removed one is left as it is.
func TestEnvServiceReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		me := newHost(t, seg, "me", config.Default())
		f := withServices(me)
		one, two := svc("one", "lan"), svc("two")
		me.start(withSvcs(me.next, lanVHID(0), one, two))
		seg.Run(5 * time.Second)
		synctest.Wait()
		base := []string{"one stop", "two stop", "one start", "two start"}
		if got := f.got(); len(got) != 4 || !sameSet(got, base) {
			t.Fatalf("ran %v", got)
		}
		one.Master = config.ActionRestart
		me.reload(withSvcs(me.next, lanVHID(0), one, two, svc("three", "lan")))
		synctest.Wait()
		if got := f.got()[4:]; !sameSet(got, []string{"one restart", "three start"}) {
			t.Errorf("reload ran %v, want one restart and three start", got)
		}
		n := len(f.got())
		me.reload(withSvcs(me.next, lanVHID(0), one))
		synctest.Wait()
		if got := f.got()[n:]; len(got) != 0 {
			t.Errorf("second reload ran %v, want nothing", got)
		}
		if st := me.status().Services; len(st) != 1 || st[0].Name != "one" {
			t.Errorf("services in status %+v", st)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// TestEnvServiceReaddedWaits: a service removed by a reload while its
// action runs, then added back by the next reload, does not run a second
// action on the unit until the first has finished.
func TestEnvServiceReaddedWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		me, f, release := blockedStopHost(t, seg)
		dhcp := svc("dhcp")
		dhcp.Timeout = time.Hour
		me.start(withSvcs(me.next, lanVHID(0), dhcp))
		seg.Run(time.Second) // BACKUP at start: the stop runs and blocks
		synctest.Wait()
		if got := f.got(); len(got) != 1 || got[0] != "dhcp stop" {
			t.Fatalf("ran %v, want the blocked stop", got)
		}
		me.reload(withSvcs(me.next, lanVHID(0)))
		me.reload(withSvcs(me.next, lanVHID(0), dhcp))
		seg.Run(time.Second)
		synctest.Wait()
		if got := f.got(); len(got) != 1 {
			t.Errorf("ran %v while the removed service's stop still ran, want nothing more", got)
		}
		close(release)
		synctest.Wait()
		if got := f.got(); len(got) != 2 || got[1] != "dhcp stop" {
			t.Errorf("ran %v, want the re-added service's own stop (reconcile) once the first ended", got)
		}
	})
}
