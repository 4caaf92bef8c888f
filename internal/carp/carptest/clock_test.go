package carptest

import (
	"fmt"
	"testing"
	"time"
)

// TestClockOrder: Advance fires timers in deadline order, ties in the
// order they were armed, each at its own deadline, and stops at the end.
func TestClockOrder(t *testing.T) {
	c := NewClock(Epoch)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+c.Now().Sub(Epoch).String()) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(time.Second, at("b"))
	late := c.AfterFunc(10*time.Second, at("late"))
	c.Advance(5 * time.Second)
	want := "[a@1s b@1s c@3s]"
	if s := fmt.Sprint(got); s != want || !c.Now().Equal(Epoch.Add(5*time.Second)) {
		t.Fatalf("fired %s at end %v, want %s at 5s", s, c.Now().Sub(Epoch), want)
	}
	if !late.Stop() || late.Stop() {
		t.Fatal("Stop of an armed timer must report true once")
	}
	c.Advance(time.Hour)
	if len(got) != 3 {
		t.Fatalf("a stopped timer fired: %v", got)
	}
}

// TestClockTimerChannel: a channel timer delivers its deadline; Reset and
// Stop leave nothing stale behind (time.Timer since Go 1.23); a timer
// armed with d <= 0 fires at once.
func TestClockTimerChannel(t *testing.T) {
	c := NewClock(Epoch)
	tm := c.NewTimer(time.Second)
	c.Advance(2 * time.Second)
	select {
	case v := <-tm.C():
		if !v.Equal(Epoch.Add(time.Second)) {
			t.Fatalf("tick %v", v.Sub(Epoch))
		}
	default:
		t.Fatal("no tick")
	}
	tm.Reset(time.Second)
	c.Advance(time.Second) // fires, not received
	if tm.Reset(time.Minute) {
		t.Fatal("Reset of a fired timer reported it armed")
	}
	select {
	case <-tm.C():
		t.Fatal("stale tick after Reset")
	default:
	}
	tm.Reset(0)
	select {
	case <-tm.C():
	default:
		t.Fatal("Reset(0) did not fire at once")
	}
	tm.Reset(-time.Second)
	if tm.Stop() {
		t.Fatal("a timer that fired at once reported armed")
	}
	select {
	case <-tm.C():
		t.Fatal("stale tick after Stop")
	default:
	}
}
