package carptest

import (
	"sync"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// Clock is a fake carp.Clock: time moves only when Advance is called, and
// timers fire in the order of their deadlines (then of arming), each on the
// goroutine calling Advance. Safe for concurrent use.
type Clock struct {
	// Settle, when set, is called after every timer Advance fires and at
	// its end, so that the goroutines a timer woke have run (and armed
	// their next timers) before the next one fires. Inside a
	// testing/synctest bubble, synctest.Wait does exactly that.
	Settle func()

	mu    sync.Mutex
	now   time.Time
	seq   uint64
	armed map[*timer]struct{}
}

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, armed: map[*timer]struct{}{}}
}

// Now implements carp.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements carp.Clock. A timer armed with d <= 0 fires at once,
// as a real one does.
func (c *Clock) NewTimer(d time.Duration) carp.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// AfterFunc calls f on the goroutine of Advance once d has passed (at the
// next Advance when d <= 0). C of the returned timer is nil.
func (c *Clock) AfterFunc(d time.Duration, f func()) carp.Timer {
	t := &timer{c: c, fn: f}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due
// on the way, in order. It is bounded: at most a million timers per call.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for range 1_000_000 {
		c.mu.Lock()
		var next *timer
		for t := range c.armed {
			if !t.when.After(end) && (next == nil || t.when.Before(next.when) ||
				(t.when.Equal(next.when) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.mu.Unlock()
			break
		}
		delete(c.armed, next)
		if next.when.After(c.now) {
			c.now = next.when
		}
		if next.ch != nil {
			next.send(c.now)
			c.mu.Unlock()
		} else {
			c.mu.Unlock()
			next.fn()
		}
		c.settle()
	}
	c.mu.Lock()
	if end.After(c.now) {
		c.now = end
	}
	c.mu.Unlock()
	c.settle()
}

func (c *Clock) settle() {
	if c.Settle != nil {
		c.Settle()
	}
}

type timer struct {
	c    *Clock
	ch   chan time.Time // NewTimer
	fn   func()         // AfterFunc
	when time.Time
	seq  uint64
}

func (t *timer) C() <-chan time.Time { return t.ch }

// send delivers a tick without blocking; c.mu is held.
func (t *timer) send(now time.Time) {
	select {
	case t.ch <- now:
	default:
	}
}

// drain drops an undelivered tick, so that nothing stale is received after
// Reset or Stop (time.Timer since Go 1.23); c.mu is held.
func (t *timer) drain() {
	if t.ch == nil {
		return
	}
	select {
	case <-t.ch:
	default:
	}
}

func (t *timer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.armed[t]
	t.drain()
	c.seq++
	t.when, t.seq = c.now.Add(d), c.seq
	if d <= 0 && t.ch != nil {
		delete(c.armed, t)
		t.send(c.now)
		return was
	}
	c.armed[t] = struct{}{}
	return was
}

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.armed[t]
	delete(c.armed, t)
	t.drain()
	return was
}
