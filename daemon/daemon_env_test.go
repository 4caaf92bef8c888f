package daemon

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"net/netip"

	"github.com/carpd/carpd/carp"
	"github.com/carpd/carpd/carp/carptest"
	"github.com/carpd/carpd/config"
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
		if st.Demotion != (DemotionStatus{}) {
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
