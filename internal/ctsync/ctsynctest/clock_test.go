package ctsynctest

import (
	"testing"
	"time"
)

func TestClockFiresInOrder(t *testing.T) {
	start := time.Unix(1700000000, 0)
	c := NewClock(start)
	tick, stopTick := c.Ticker(100 * time.Millisecond)
	once, _ := c.Timer(250 * time.Millisecond)
	stopped, stop := c.Timer(50 * time.Millisecond)
	stop()
	c.Advance(99 * time.Millisecond)
	select {
	case <-tick:
		t.Fatal("ticker fired early")
	default:
	}
	c.Advance(time.Millisecond)
	if got := <-tick; !got.Equal(start.Add(100 * time.Millisecond)) {
		t.Fatalf("tick at %v", got.Sub(start))
	}
	c.Advance(time.Second) // the ticks nobody took are not queued twice
	if got := <-tick; !got.Equal(start.Add(200 * time.Millisecond)) {
		t.Fatalf("second tick at %v", got.Sub(start))
	}
	if got := <-once; !got.Equal(start.Add(250 * time.Millisecond)) {
		t.Fatalf("timer at %v", got.Sub(start))
	}
	select {
	case <-stopped:
		t.Fatal("a stopped timer fired")
	default:
	}
	stopTick()
	c.Advance(time.Second)
	select {
	case <-tick:
		t.Fatal("a stopped ticker fired")
	default:
	}
	if !c.Now().Equal(start.Add(2100 * time.Millisecond)) {
		t.Fatalf("now %v", c.Now().Sub(start))
	}
}
