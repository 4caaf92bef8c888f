package carp

import (
	"testing"
	"time"
)

// TestFDTimer: the timerfd timer fires once per arming, not before its
// deadline, and after Reset or Stop nothing of an earlier arming arrives
// (time.Timer's semantics since Go 1.23, which the vhost's loop relies on).
func TestFDTimer(t *testing.T) {
	tm, release, err := newSystemTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	start := time.Now()
	tm.Reset(20 * time.Millisecond)
	select {
	case at := <-tm.C():
		if d := at.Sub(start); d < 20*time.Millisecond {
			t.Errorf("fired after %v, before its 20ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
	select {
	case <-tm.C():
		t.Fatal("fired twice for one arming")
	case <-time.After(50 * time.Millisecond):
	}

	// Expired but not received, then re-armed: the old tick is gone.
	tm.Reset(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	tm.Reset(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("a tick of the earlier arming arrived after Reset")
	case <-time.After(50 * time.Millisecond):
	}
	// Stopped: nothing arrives; Reset to 0 fires at once.
	tm.Reset(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	tm.Stop()
	select {
	case <-tm.C():
		t.Fatal("a tick arrived after Stop")
	case <-time.After(50 * time.Millisecond):
	}
	tm.Reset(0)
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("Reset(0) did not fire")
	}
}

// TestVHostSystemTimer: a vhost on the system clock runs its timers on a
// timerfd, and one on a test clock on that clock.
func TestVHostSystemTimer(t *testing.T) {
	v := &VHost{clk: realClock{}}
	tm, release := v.newTimer()
	defer release()
	if _, ok := tm.(*fdTimer); !ok {
		t.Errorf("system clock: timer %T, want *fdTimer", tm)
	}
}
