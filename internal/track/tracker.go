package track

import (
	"context"
	"fmt"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/openwrt"
	"github.com/carpd/carpd/internal/vip"
)

// minWakeSpacing is the shortest time between the starts of two rounds
// when events wake the tracker.
const minWakeSpacing = 50 * time.Millisecond

// result is one round's outcome.
type result struct {
	value  int    // 0 good; weight (or a file's integer) bad
	reason string // what the round saw: "0 of 1 targets answered"
	err    string // why the tracker cannot work, "" when it can
	// fast: start the next round after spacing instead of interval (a
	// ping tracker in suspect mode, docs/trackers.md#fast-probing).
	fast bool
}

// prober runs a tracker type's rounds.
type prober interface {
	// round runs one round; it returns by ctx's end at the latest.
	round(ctx context.Context) result
	// wake returns a channel that, when it receives, starts a round early
	// (netifd events); nil for none.
	wake() <-chan struct{}
	close()
}

func newProber(t *Tracker) prober {
	switch t.cfg.Type {
	case config.TrackFile:
		return &fileProber{t: t}
	case config.TrackScript:
		return &scriptProber{t: t}
	case config.TrackProcess:
		return &processProber{t: t}
	case config.TrackInterface:
		return newInterfaceProber(t)
	case config.TrackPing:
		return newPingProber(t)
	}
	return errProber(fmt.Sprintf("unknown tracker type %q", t.cfg.Type))
}

// errProber is a tracker that cannot run: every round is bad.
type errProber string

func (e errProber) round(ctx context.Context) result {
	return result{value: 1, reason: string(e), err: string(e)}
}
func (errProber) wake() <-chan struct{} { return nil }
func (errProber) close()                {}

func (t *Tracker) run(ctx context.Context, p prober) {
	defer close(t.done)
	defer p.close()
	clk := t.env.Clock
	timer := clk.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	wake := p.wake()
	for {
		start := clk.Now()
		r := p.round(ctx)
		if ctx.Err() != nil {
			return
		}
		t.apply(r, clk.Now())
		next := t.cfg.Interval
		if r.fast && t.downState() {
			r.fast = false // down already: nothing left to confirm
		}
		if r.fast {
			next = max(t.cfg.Interval/5, 50*time.Millisecond)
		}
		wait := start.Add(next).Sub(clk.Now())
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-t.probe:
			timer.Stop()
		case <-wake:
			// An event (netifd's) starts a round at once, but at most one
			// per minWakeSpacing: a burst of events is not a burst of
			// rounds that would meet `down` in a few milliseconds.
			timer.Stop()
			if d := start.Add(max(t.cfg.Interval/5, minWakeSpacing)).Sub(clk.Now()); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C():
				}
			}
		}
	}
}

func (t *Tracker) downState() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m.state == StateDown
}

// apply feeds a round to the machine, updates the status and reports a
// change.
func (t *Tracker) apply(r result, now time.Time) {
	t.mu.Lock()
	old := t.m.value
	changed := t.m.observe(r.value, now)
	st := &t.st
	st.Rounds++
	if r.value == 0 {
		st.Good++
	} else {
		st.Bad++
	}
	st.Error = r.err
	st.State, st.Value, st.Since = t.m.state, t.m.value, t.m.since
	st.Suspect = r.value > t.m.value
	switch {
	case changed && t.m.value > old:
		st.Reason = fmt.Sprintf("%s for %d rounds", r.reason, t.cfg.Down)
		t.settled = true
	case changed:
		st.Reason = fmt.Sprintf("%s for %d rounds", r.reason, t.cfg.Up)
		t.settled = true
	case !t.settled:
		// Before the first change the reason is the last round's.
		st.Reason = r.reason
	}
	rep := Report{Name: t.cfg.Name, Group: t.cfg.Group, Down: t.m.state == StateDown,
		Value: t.m.value, Reason: st.Reason, Since: t.m.since}
	t.mu.Unlock()
	if changed && t.report != nil {
		t.report(rep)
	}
}

func (e Env) withDefaults() Env {
	if e.Clock == nil {
		e.Clock = realClock{}
	}
	if e.LinkUp == nil {
		e.LinkUp = vip.LinkUp
	}
	if e.Run == nil {
		e.Run = openwrt.RunProgram
	}
	if e.ProcRoot == "" {
		e.ProcRoot = "/proc"
	}
	if e.ICMP == nil {
		e.ICMP = openICMP
	}
	return e
}

// realClock is the system clock in carp.Clock's shape.
type realClock struct{}

func (realClock) Now() time.Time                      { return time.Now() }
func (realClock) NewTimer(d time.Duration) carp.Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
