package daemon

import (
	"slices"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/track"
)

// Shared failures move nothing (docs/trackers.md#confirming): a backup
// that hears its master's demotion rise above its own does not take over
// at once when a tracker of its own watches a group of that vhid. It
// probes its trackers first and takes over only when every one had a
// good round; a suspect one (a bad round, not down yet) holds the
// takeover until it goes down (our demotion then matches the master's:
// no move) or the bound passes (then the demotion decides, as on
// OpenBSD). After our own tracker recovers, takeovers on demotion wait
// up × interval + interval, so that the master watching the same path
// can recover too.

// holdPoll is how often a confirmation looks at the trackers.
const holdPoll = 20 * time.Millisecond

// maxHold caps a hold (confirming, or after a recovery): trackers may be
// configured slow (interval has no upper bound, down and up go to 1000),
// and a takeover held for hours would be no better than none.
const maxHold = 5 * time.Minute

// watching lists the trackers that raise one of ve's groups.
func (d *Daemon) watching(ve *vhostEntry) []*trackerEntry {
	var out []*trackerEntry
	for _, te := range d.trackers {
		if slices.Contains(groupsOf(ve.cfg), te.group) {
			out = append(out, te)
		}
	}
	return out
}

// confirmBound is how long ve's vhost may hold a takeover on demotion
// for its trackers: as long as the slowest may need, after ProbeNow, to
// go down. A ping tracker's suspect rounds follow each other fast, each
// bounded by the timeout: (down+1) × timeout; other types run their
// rounds at the interval: (down-1) × interval + timeout. Plus a round's
// spacing, at most maxHold; 0 when no tracker watches it (OpenBSD: at
// once).
func (d *Daemon) confirmBound(ve *vhostEntry) time.Duration {
	var b time.Duration
	for _, te := range d.watching(ve) {
		c := track.WithDefaults(te.cfg)
		need := time.Duration(c.Down+1) * c.Timeout
		if c.Type != config.TrackPing {
			need = time.Duration(c.Down-1)*c.Interval + c.Timeout
		}
		b = max(b, need+max(c.Interval/5, 50*time.Millisecond))
	}
	return min(b, maxHold)
}

// confirmOption is the carp.WithConfirm of ve's vhost.
func (d *Daemon) confirmOption(ve *vhostEntry) carp.VHostOption {
	return carp.WithConfirm(d.confirmBound(ve), func(a carp.ActConfirm) {
		// On the vhost goroutine, which the loop may be waiting for.
		go d.post(func() { d.confirm(ve, a) })
	})
}

// updateConfirm gives every running vhost its bound (trackers changed).
func (d *Daemon) updateConfirm() {
	for _, ve := range d.vhosts {
		if ve.v != nil {
			ve.v.SetConfirm(d.confirmBound(ve))
		}
	}
}

// confirm answers a vhost's ActConfirm, on the loop: it makes the
// trackers of the vhid's groups probe at once and watches them off the
// loop.
func (d *Daemon) confirm(ve *vhostEntry, a carp.ActConfirm) {
	v := ve.v
	if v == nil || d.closing {
		return
	}
	tes := d.watching(ve)
	type watched struct {
		name  string
		t     Tracker
		good0 uint64
	}
	ws := make([]watched, 0, len(tes))
	for _, te := range tes {
		ws = append(ws, watched{te.cfg.Name, te.t, te.t.Status().Good})
		te.t.ProbeNow()
	}
	until := d.now().Add(d.confirmBound(ve))
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		tick := time.NewTicker(holdPoll)
		defer tick.Stop()
		said := ""
		for {
			pending, why := "", ""
			for _, w := range ws {
				st := w.t.Status()
				switch {
				case st.State == track.StateDown:
					// Our demotion rose (or is rising) too: the failure
					// is shared; the machine decides by demotion.
					d.log.Info("takeover not confirmed: own tracker down", "master", a.Master, "track", w.name)
					return
				case st.Suspect:
					pending, why = w.name, "suspect"
				case st.Good == w.good0 && pending == "":
					pending, why = w.name, "probing"
				}
			}
			if pending == "" {
				d.log.Info("takeover confirmed: own trackers good", "master", a.Master)
				v.Hold(time.Time{}, "")
				return
			}
			if why == "suspect" && said != pending {
				said = pending
				v.Hold(until, "own tracker "+pending+" suspect")
			}
			if !d.now().Before(until) {
				return // the machine decides by demotion
			}
			select {
			case <-tick.C:
			case <-d.bgCtx.Done():
				return
			}
		}
	}()
}

// holdAfterRecovery holds takeovers on demotion of the vhids te watches
// for up × interval + interval after te recovered (its value fell), so
// that a master whose tracker watches the same path recovers too.
func (d *Daemon) holdAfterRecovery(te *trackerEntry, value int) {
	old, ok := d.sources.Get(te.group, te.cfg.Name)
	if !ok || value >= old.Value {
		return
	}
	c := track.WithDefaults(te.cfg)
	until := d.now().Add(min(time.Duration(c.Up+1)*c.Interval, maxHold))
	for _, ve := range d.vhosts {
		if ve.v != nil && slices.Contains(groupsOf(ve.cfg), te.group) {
			ve.v.Hold(until, "own tracker "+te.cfg.Name+" recovered")
		}
	}
}
