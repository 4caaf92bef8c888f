package daemon

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// holdPair starts a (master, advskew 0) and b (backup, advskew 100), both
// with preempt and a wan_ping tracker in group carp, on one segment.
func holdPair(t *testing.T, seg *carptest.Segment) (a, b *host, ta, tb *fakeTracker) {
	base := config.Default()
	base.Global.Preempt = true
	a = newHost(t, seg, "a", base)
	cb := *base
	b = newHost(t, seg, "b", &cb)
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
	if s := a.vhost("dev0", 1).State + "/" + b.vhost("dev0", 1).State; s != "MASTER/BACKUP" {
		t.Fatalf("start: %s", s)
	}
	ta, _ = fa.last("wan_ping")
	tb, _ = fb.last("wan_ping")
	return a, b, ta, tb
}

// TestEnvSharedFailureStaggered: both paths die, but the master's tracker
// goes down 500 ms before the backup's. The backup hears the master's
// demotion first; its own tracker, probed at once, is suspect, so it holds
// the takeover until its own tracker is down too: nothing moves.
func TestEnvSharedFailureStaggered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a, b, ta, tb := holdPair(t, seg)
		tb.dead.Store(true)
		ta.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(200 * time.Millisecond)
		if tb.probes.Load() == 0 {
			t.Errorf("b did not probe its tracker on a's demotion")
		}
		if h := b.vhost("dev0", 1).Held; !strings.Contains(h, "wan_ping suspect") {
			t.Errorf("b held %q, want own tracker wan_ping suspect", h)
		}
		seg.Run(300 * time.Millisecond)
		tb.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(10 * time.Second)
		if s := a.vhost("dev0", 1).State + "/" + b.vhost("dev0", 1).State; s != "MASTER/BACKUP" {
			t.Errorf("staggered shared failure: %s, want MASTER/BACKUP", s)
		}
		if got := len(transitionsOf(a.status(), 1)); got != 2 {
			t.Errorf("a made %d transitions, want the 2 of its start", got)
		}

		// The paths return, b's 500 ms before a's: b holds (recovery),
		// nothing moves.
		tb.dead.Store(false)
		tb.set(false, 0, "1 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(500 * time.Millisecond)
		ta.set(false, 0, "1 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(10 * time.Second)
		if s := a.vhost("dev0", 1).State + "/" + b.vhost("dev0", 1).State; s != "MASTER/BACKUP" {
			t.Errorf("staggered recovery: %s, want MASTER/BACKUP", s)
		}
		if got := len(transitionsOf(a.status(), 1)); got != 2 {
			t.Errorf("a made %d transitions, want the 2 of its start", got)
		}
	})
}

// TestEnvMasterOnlyFailureConfirmed: only the master's path dies; the
// backup's probe is good at once and it takes over without waiting out
// the confirmation bound.
func TestEnvMasterOnlyFailureConfirmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a, b, ta, tb := holdPair(t, seg)
		ta.set(true, 1, "0 of 1 targets answered for 3 rounds", seg.Now())
		seg.Run(300 * time.Millisecond)
		if s := a.vhost("dev0", 1).State + "/" + b.vhost("dev0", 1).State; s != "BACKUP/MASTER" {
			t.Errorf("300 ms after a's tracker went down: %s, want BACKUP/MASTER", s)
		}
		if tb.probes.Load() != 1 {
			t.Errorf("b probed %d times, want 1", tb.probes.Load())
		}
	})
}
