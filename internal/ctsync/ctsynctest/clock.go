package ctsynctest

import (
	"sync"
	"time"
)

// Clock is a ctsync.Clock that stands still until Advance moves it. Its
// timers fire as Advance passes their time, in order; like the real
// ones, a tick nobody took yet is not queued twice.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

// NewClock returns a clock at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer fires once at Now()+d, unless stopped.
func (c *Clock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := c.add(d, 0)
	return t.ch, t.stop
}

// Ticker fires every d until stopped.
func (c *Clock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := c.add(d, d)
	return t.ch, t.stop
}

func (c *Clock) add(d, period time.Duration) *timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d), period: period, active: true}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock d forward, firing the timers due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for {
		var next *timer
		for _, t := range c.timers {
			if t.active && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.now = next.at
		select {
		case next.ch <- next.at:
		default:
		}
		if next.period > 0 {
			next.at = next.at.Add(next.period)
		} else {
			next.active = false
		}
	}
	c.now = end
}

type timer struct {
	c      *Clock
	ch     chan time.Time
	at     time.Time
	period time.Duration
	active bool
}

// stop deactivates t and forgets it.
func (t *timer) stop() {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	t.active = false
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			break
		}
	}
}
