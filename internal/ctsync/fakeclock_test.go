package ctsync

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
)

// newClockedLink is a lossless link whose engines run on a fake clock:
// time passes only through advance and eventually, so that tests of
// timeouts take no wall time.
func newClockedLink() *memLink {
	l := newMemLink(0)
	l.clk = ctsynctest.NewClock(time.Unix(1_800_000_000, 0))
	return l
}

// clockStep is how far the fake clock moves at once: less than any
// timer of the engine (the urgent window is 20 ms, the tick 10 ms with
// the tests' window).
const clockStep = 5 * time.Millisecond

// settle lets the running engines of l take in what is pending: a call
// through an engine's command channel returns once its goroutine is back
// in its loop and its applier has written every job queued so far;
// rounds go on (bounded) until no frame (on the link, in a reader's
// hands or in an engine's queue), kernel event or kernel write waits,
// and a few more let frames cross and be answered. Without the link's
// count a frame a reader goroutine had not yet queued went unseen, and
// the fake clock moved on under it.
func (l *memLink) settle() {
	calm := 0
	for round := 0; round < 1000 && calm < 3; round++ {
		busy := false
		for _, n := range l.nodes {
			if n.cancel == nil {
				continue
			}
			if n.conn.queued.Load() > 0 {
				// Let the reader pass it on before asking the engine.
				busy = true
				runtime.Gosched()
			}
			n.e.do(context.Background(), func() { n.e.waitApplied(context.Background()) })
			if n.conn.queued.Load() > 0 || len(n.e.recv) > 0 || len(n.e.applyq) > 0 || len(n.e.k.Events()) > 0 {
				busy = true
			}
		}
		if busy {
			calm = 0
		} else {
			calm++
		}
	}
}

// advance moves l's fake clock d forward in steps, the engines settling
// at each.
func (l *memLink) advance(d time.Duration) {
	for d > 0 {
		l.settle()
		step := min(d, clockStep)
		l.clk.Advance(step)
		d -= step
	}
	l.settle()
}

// eventually waits for cond for d: of fake time on a clocked link (with
// a wall-time bound against a hang), of real time otherwise.
func (l *memLink) eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if l.clk == nil {
		eventually(t, d, what, cond)
		return
	}
	end, wall := l.clk.Now().Add(d), time.Now().Add(time.Minute)
	for l.clk.Now().Before(end) && time.Now().Before(wall) {
		l.settle()
		if cond() {
			return
		}
		l.clk.Advance(clockStep)
	}
	if cond() {
		return
	}
	t.Fatalf("timed out after %v of fake time: %s", d, what)
}
