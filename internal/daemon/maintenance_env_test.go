package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// maintenanceAsync sends a maintenance request with a wait on a goroutine
// of its own; the answer comes on the channel.
func maintenanceAsync(h *host, enable bool, wait int) <-chan maintAnswer {
	ch := make(chan maintAnswer, 1)
	go func() {
		res, err := h.d.HandleContext(context.Background(), Request{Method: "maintenance", Enable: &enable, Wait: wait})
		ch <- maintAnswer{res, err}
	}()
	return ch
}

type maintAnswer struct {
	res any
	err error
}

// answer steps seg until the request answers (at most max).
func answer(t *testing.T, seg *carptest.Segment, ch <-chan maintAnswer, max time.Duration) (maintAnswer, time.Duration) {
	t.Helper()
	start := seg.Now()
	for ; max > 0; max -= 100 * time.Millisecond {
		select {
		case a := <-ch:
			return a, seg.Now().Sub(start)
		default:
			step(seg, 100*time.Millisecond)
		}
	}
	t.Fatalf("no answer after %v", seg.Now().Sub(start))
	return maintAnswer{}, 0
}

// TestEnvMaintenanceWaitConfirms: the master, with flows it replicates, is
// put in maintenance with --wait: the answer comes once the peer daemon is
// master and the flows are acknowledged, not at once; status shows the
// wait done. Turned off with a wait, it answers once it is master again.
func TestEnvMaintenanceWaitConfirms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a, b := syncPair(t, seg)
		peerFlows(a.syncKern, 30)
		if !stepUntil(seg, 5*time.Second, func() bool { s := a.status().Sync; return s.FlowsLocal == 30 && s.FlowsSynced == 30 }) {
			t.Fatalf("a's flows never synced: %+v", a.status().Sync.Status)
		}
		ch := maintenanceAsync(a, true, 20)
		step(seg, 100*time.Millisecond)
		if st := a.status().MaintenanceWait; st == nil || st.State != MaintWaiting || st.Reason == "" {
			t.Fatalf("status while waiting: %+v", st)
		}
		ans, took := answer(t, seg, ch, 20*time.Second)
		if ans.err != nil {
			t.Fatalf("maintenance on --wait: %v", ans.err)
		}
		res, ok := ans.res.(MaintenanceWaitResult)
		if !ok || !res.Maintenance || res.Wait == nil || res.Wait.State != MaintDone {
			t.Fatalf("result %#v", ans.res)
		}
		if sa, sb := a.vhost("dev0", 1).State, b.vhost("dev0", 1).State; sa != "BACKUP" || sb != "MASTER" {
			t.Fatalf("answered with a %s, b %s", sa, sb)
		}
		if s := a.status().Sync; s.FlowsSynced != s.FlowsLocal || !s.PeerUp {
			t.Fatalf("answered with the sync unconfirmed: %+v", s.Status)
		}
		if st := a.status().MaintenanceWait; st == nil || st.State != MaintDone {
			t.Fatalf("status after the wait: %+v", st)
		}
		t.Logf("handover confirmed after %v", took)

		ans, _ = answer(t, seg, maintenanceAsync(a, false, 20), 20*time.Second)
		if res, ok := ans.res.(MaintenanceWaitResult); ans.err != nil || !ok || res.Wait.State != MaintDone {
			t.Fatalf("maintenance off --wait: %#v, %v", ans.res, ans.err)
		}
		// Without a wait: as before, and the last wait's record goes.
		on := true
		if _, err := a.d.Handle(Request{Method: "maintenance", Enable: &on}); err != nil {
			t.Fatal(err)
		}
		if st := a.status().MaintenanceWait; st != nil {
			t.Errorf("maintenance_wait %+v after a request without wait", st)
		}
	})
}

// TestEnvMaintenanceWaitNoPeer: alone, a router in maintenance stays
// master (nobody takes over): --wait fails after its timeout and says
// why; maintenance mode is on all the same.
func TestEnvMaintenanceWaitNoPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		h := newHost(t, seg, "me", config.Default())
		h.start(cfgWith(h.next, vhid("dev0", 1, 0, "pw", "10.0.0.1/24")))
		step(seg, 4*time.Second)
		ans, took := answer(t, seg, maintenanceAsync(h, true, 3), 10*time.Second)
		var we *MaintenanceWaitError
		if !errors.As(ans.err, &we) {
			t.Fatalf("maintenance on --wait=3 alone: %#v, %v", ans.res, ans.err)
		}
		if r := we.Result.Wait.Reason; !strings.Contains(r, "dev0 vhid 1 is MASTER") || !strings.Contains(ans.err.Error(), r) {
			t.Errorf("reason %q (error %q)", r, ans.err)
		}
		if took < 3*time.Second || took > 4*time.Second {
			t.Errorf("failed after %v, want the 3 s wait", took)
		}
		st := h.status()
		if !st.Demotion.Maintenance || st.MaintenanceWait == nil || st.MaintenanceWait.State != MaintFailed {
			t.Errorf("status: maintenance %v, wait %+v", st.Demotion.Maintenance, st.MaintenanceWait)
		}
	})
}

// TestMaintenanceWaitBounds: a wait below 0 or above an hour is refused
// before anything changes.
func TestMaintenanceWaitBounds(t *testing.T) {
	cfg := config.Default()
	cfg.Global.ControlSocket = t.TempDir() + "/carpd.sock"
	d := New(cfg, Options{})
	on := true
	for _, w := range []int{-1, MaxMaintenanceWait + 1} {
		if _, err := d.Handle(Request{Method: "maintenance", Enable: &on, Wait: w}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("wait %d: %v", w, err)
		}
	}
	if d.maint {
		t.Error("maintenance turned on by a refused request")
	}
}
