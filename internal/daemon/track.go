package daemon

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/track"
)

// Trackers (docs/trackers.md): each `config track` section runs a
// track.Tracker; its reports raise its demotion group through setSource.
// The loop owns d.trackers; trackers report from their own goroutines
// into a mailbox of their entry, which never blocks them, and wake the
// loop on trackWake.

// Tracker is a running tracker as the daemon uses it: *track.Tracker.
type Tracker interface {
	Status() track.Status
	// ProbeNow starts a round at once (docs/trackers.md#confirming).
	ProbeNow()
	// Stop ends the tracker and waits for it; no report follows.
	Stop()
}

// startTrackerReal is Env.StartTracker's real one.
func startTrackerReal(ctx context.Context, cfg config.Track, env track.Env, report func(track.Report)) Tracker {
	return track.Start(ctx, cfg, env, report)
}

// trackerEntry is one configured tracker.
type trackerEntry struct {
	cfg config.Track
	t   Tracker
	// group and name of the source it raises (its config's, defaults
	// applied).
	group string
	// mu guards pending: the reports not yet taken by the loop.
	mu      sync.Mutex
	pending []track.Report
}

// maxPendingReports bounds a tracker's mailbox: reports come on changes
// only (after down or up rounds), so more than this means the loop is
// stuck; the oldest go, the newest state is what counts.
const maxPendingReports = 16

// applyTrackers makes the running trackers match cfg.Tracks: an unchanged
// one keeps running (and its state), a changed one restarts, a removed
// one stops and its source goes.
func (d *Daemon) applyTrackers(cfg *config.Config) {
	want := map[string]config.Track{}
	for _, tc := range cfg.Tracks {
		want[tc.Name] = tc
	}
	resume := map[string]int{}
	for name, te := range d.trackers {
		tc, ok := want[name]
		if ok && sameTrack(te.cfg, tc) && !d.closing {
			continue
		}
		// A changed tracker that is down hands its value to the new one
		// and keeps its source meanwhile: a reload moves nothing.
		if src, found := d.sources.Get(te.group, name); ok && found && !d.closing && trackGroup(tc) == te.group && src.Value > 0 {
			resume[name] = src.Value
		}
		d.stopTracker(te, resume[name] > 0)
		delete(d.trackers, name)
	}
	if d.closing {
		return
	}
	for _, tc := range cfg.Tracks {
		if _, ok := d.trackers[tc.Name]; ok {
			continue
		}
		te := &trackerEntry{cfg: tc, group: trackGroup(tc)}
		d.trackers[tc.Name] = te
		env := track.Env{Clock: d.env.Clock, LinkUp: d.env.LinkUp, Netifd: d.trackNetifd(), Resume: resume[tc.Name]}
		te.t = d.env.StartTracker(d.bgCtx, tc, env, func(r track.Report) { d.trackReport(te, r) })
		d.log.Info("tracker started", "track", tc.Name, "type", tc.Type, "group", te.group)
	}
	d.updateConfirm()
}

// stopTracker stops a tracker off the loop (a round under way may take
// its timeout) and removes its source unless keep (it passes to the
// tracker that replaces it).
func (d *Daemon) stopTracker(te *trackerEntry, keep bool) {
	t := te.t
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		t.Stop()
	}()
	te.mu.Lock()
	te.pending = nil
	te.mu.Unlock()
	if keep {
		return
	}
	if _, ok := d.sources.Get(te.group, te.cfg.Name); ok {
		d.setSource(te.group, te.cfg.Name, 0, "", 0)
	}
}

// stopTrackers stops every tracker (Run, stopping).
func (d *Daemon) stopTrackers() {
	for name, te := range d.trackers {
		d.stopTracker(te, false)
		delete(d.trackers, name)
	}
}

// trackReport runs on a tracker's goroutine: it queues r and wakes the
// loop, without blocking.
func (d *Daemon) trackReport(te *trackerEntry, r track.Report) {
	te.mu.Lock()
	te.pending = append(te.pending, r)
	if len(te.pending) > maxPendingReports {
		te.pending = te.pending[len(te.pending)-maxPendingReports:]
	}
	te.mu.Unlock()
	select {
	case d.trackWake <- struct{}{}:
	default: // the loop is already woken
	}
}

// trackReports takes the trackers' queued reports on the loop.
func (d *Daemon) trackReports() {
	for _, te := range d.trackers {
		te.mu.Lock()
		rs := te.pending
		te.pending = nil
		te.mu.Unlock()
		for _, r := range rs {
			d.trackChanged(te, r)
		}
	}
}

// trackChanged applies one report: the source, the log, the hooks and
// the carp.track event.
func (d *Daemon) trackChanged(te *trackerEntry, r track.Report) {
	value := r.Value // 0 while up; a file tracker's integer
	d.holdAfterRecovery(te, value)
	d.setSource(te.group, te.cfg.Name, value, r.Reason, 0)
	ev := TrackEvent{Name: te.cfg.Name, Type: te.cfg.Type, Group: te.group, State: track.StateUp,
		Value: value, Reason: r.Reason, Time: r.Since}
	if r.Down {
		ev.State = track.StateDown
	}
	if ev.Time.IsZero() {
		ev.Time = d.now()
	}
	if r.Down {
		d.log.Warn("tracker down", "track", ev.Name, "group", ev.Group, "value", value, "reason", r.Reason)
	} else {
		d.log.Info("tracker up", "track", ev.Name, "group", ev.Group, "value", value, "reason", r.Reason)
	}
	if d.hooks != "" && d.hotplug != nil {
		d.hotplug.Event(ev.hotplugEnv()...)
	}
	if d.ubus != nil {
		d.ubus.trackEvent(ev)
	}
}

// TrackEvent is a tracker's change as the carp.track ubus event carries
// it (docs/ubus.md#events).
type TrackEvent struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Group  string    `json:"group"`
	State  string    `json:"state"` // down or up
	Value  int       `json:"value"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// hotplugEnv is the environment of the hook call for ev (docs/hotplug).
func (ev TrackEvent) hotplugEnv() []string {
	action := "TRACK_UP"
	if ev.State == track.StateDown {
		action = "TRACK_DOWN"
	}
	return []string{"ACTION=" + action, "TRACK=" + ev.Name, "GROUP=" + ev.Group,
		"VALUE=" + strconv.Itoa(ev.Value), "REASON=" + ev.Reason}
}

// trackNetifd is the Netifd of the interface trackers: netifd over ubus,
// nil without ubus (plain Linux: device carrier only).
func (d *Daemon) trackNetifd() track.Netifd {
	if d.ubus == nil {
		return nil
	}
	return d.ubus.netifd
}

// trackerStatus lists the trackers, by name.
func (d *Daemon) trackerStatus() []track.Status {
	out := make([]track.Status, 0, len(d.trackers))
	for _, te := range d.trackers {
		out = append(out, te.t.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// sameTrack reports whether two tracker configurations are the same
// (reflect.DeepEqual without linking it). TestSameTrackEveryField fails
// when config.Track gets a field this does not compare.
func sameTrack(a, b config.Track) bool {
	return a.Name == b.Name && a.Type == b.Type && slices.Equal(a.Targets, b.Targets) && a.Device == b.Device &&
		a.Interval == b.Interval && a.Timeout == b.Timeout && a.Reliability == b.Reliability &&
		a.Down == b.Down && a.Up == b.Up && a.Group == b.Group && a.Weight == b.Weight &&
		slices.Equal(a.Command, b.Command) && a.Path == b.Path && a.Process == b.Process
}
