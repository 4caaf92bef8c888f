package daemon

// Split brain: while the sync link is up, each router tells its peer the
// CARP state of every vhid it runs (ctsync.Engine.SetCarp), and compares
// the peer's (PeerCarp) with its own. The same vhid MASTER on both for
// longer than its master-down time means the two do not hear each other's
// adverts (a partition of that LAN, a filter, a wrong password) while they
// do hear each other on the sync link: an alarm (status split_brain, the
// counter split_brain_alarms, a carp.split_brain ubus event, a log line),
// cleared when it ends. The alarm changes nothing else: both halves keep
// their VIPs, since each may be serving clients only it can reach
// (docs/carp-protocol.md#split-brain).

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/ubus/json"
)

// splitCheckEvery is how often the states are compared (besides at every
// transition).
const splitCheckEvery = time.Second

// SplitBrainStatus is one vhid MASTER here and on the sync peer (status
// split_brain).
type SplitBrainStatus struct {
	Interface string    `json:"interface"`
	VHID      uint8     `json:"vhid"`
	Since     time.Time `json:"since"`
}

// SplitBrainEvent is the carp.split_brain ubus event.
type SplitBrainEvent struct {
	Interface string    `json:"interface"`
	VHID      uint8     `json:"vhid"`
	State     string    `json:"state"` // detected | cleared
	Peer      string    `json:"peer"`
	Time      time.Time `json:"time"`
}

// splitBrain is the loop's split-brain state.
type splitBrain struct {
	// both: vhids (by config key) MASTER here and on the peer, since when.
	both map[string]time.Time
	// raised: the alarms on, by config key.
	raised map[string]SplitBrainStatus
	alarms uint64
	// sent is what the engine sentTo was last given.
	sent   []wire.CarpState
	sentTo *ctsync.Engine
}

// d.now (demotion.go) is the vhosts' clock.

// startSplitBrain compares the states every splitCheckEvery until ctx
// ends (Run's background context), and recomputes sync_bulk then.
func (d *Daemon) startSplitBrain(ctx context.Context) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		t := time.NewTicker(splitCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !d.post(d.periodic) {
					return
				}
			}
		}
	}()
}

// wireName is the name a vhid's interface goes by to the peer: the
// configured one (an OpenWrt network is usually named alike on both
// routers, its device not always), else the device.
func wireName(ve *vhostEntry) string {
	if s := (wire.CarpState{Interface: ve.cfg.Interface, VHID: 1}); s.Valid() {
		return ve.cfg.Interface
	}
	return ve.dev
}

// carpStates gives the sync engine our states when they changed (or the
// engine did). On the loop.
func (d *Daemon) carpStates() {
	if d.sync == nil {
		return
	}
	var states []wire.CarpState
	for _, ve := range d.vhosts {
		if ve.v == nil {
			continue
		}
		s := wire.CarpState{Interface: wireName(ve), VHID: ve.cfg.VHID, State: wire.CarpInit}
		switch ve.v.Status().State {
		case carp.Master.String():
			s.State = wire.CarpMaster
		case carp.Backup.String():
			s.State = wire.CarpBackup
		}
		states = append(states, s)
	}
	sb := &d.split
	if sb.sentTo == d.sync.engine && sameCarp(sb.sent, states) {
		return
	}
	sb.sent, sb.sentTo = states, d.sync.engine
	d.sync.engine.SetCarp(states)
}

// sameCarp: the same states (map order aside).
func sameCarp(a, b []wire.CarpState) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[wire.CarpState]bool, len(a))
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// checkSplitBrain sends our states and compares the peer's with them; it
// raises and clears the alarms. On the loop.
func (d *Daemon) checkSplitBrain() {
	d.carpStates()
	sb := &d.split
	if sb.both == nil {
		sb.both, sb.raised = map[string]time.Time{}, map[string]SplitBrainStatus{}
	}
	var peer []ctsync.PeerCarpState
	if d.sync != nil {
		peer = d.sync.engine.PeerCarp()
	}
	// The peer's state of a vhid: by name and vhid; else by vhid alone
	// when both routers have it on one interface only (the names differ).
	byName := map[string]uint8{}
	byVHID := map[uint8][]uint8{}
	for _, p := range peer {
		byName[p.Interface+"/"+strconv.Itoa(int(p.VHID))] = p.State
		byVHID[p.VHID] = append(byVHID[p.VHID], p.State)
	}
	ours := map[uint8]int{}
	for _, ve := range d.vhosts {
		if ve.v != nil {
			ours[ve.cfg.VHID]++
		}
	}
	now := d.now()
	seen := map[string]bool{}
	for key, ve := range d.vhosts {
		if ve.v == nil || ve.v.Status().State != carp.Master.String() {
			continue
		}
		st, ok := byName[wireName(ve)+"/"+strconv.Itoa(int(ve.cfg.VHID))]
		if !ok && len(byVHID[ve.cfg.VHID]) == 1 && ours[ve.cfg.VHID] == 1 {
			st, ok = byVHID[ve.cfg.VHID][0], true
		}
		if !ok || st != wire.CarpMaster {
			continue
		}
		seen[key] = true
		since, had := sb.both[key]
		if !had {
			sb.both[key] = now
			continue
		}
		if _, on := sb.raised[key]; !on && now.Sub(since) >= ve.vc.Params.MasterDown() {
			a := SplitBrainStatus{Interface: ve.dev, VHID: ve.cfg.VHID, Since: since}
			sb.raised[key] = a
			sb.alarms++
			d.log.Warn("split brain: this router and its sync peer are both MASTER; their CARP adverts do not reach each other",
				"iface", a.Interface, "vhid", a.VHID, "since", since, "peer", d.syncPeerName())
			d.splitBrainEvent(a, "detected", now)
		}
	}
	for key := range sb.both {
		if !seen[key] {
			delete(sb.both, key)
		}
	}
	for key, a := range sb.raised {
		if !seen[key] {
			delete(sb.raised, key)
			d.log.Info("split brain over", "iface", a.Interface, "vhid", a.VHID, "lasted", now.Sub(a.Since).Round(time.Millisecond))
			d.splitBrainEvent(a, "cleared", now)
		}
	}
}

func (d *Daemon) syncPeerName() string {
	if d.sync == nil {
		return ""
	}
	st := d.sync.engine.Status()
	if st.PeerName != "" {
		return st.PeerName
	}
	return st.Peer
}

// splitBrainEvent sends a carp.split_brain ubus event, off the loop.
func (d *Daemon) splitBrainEvent(a SplitBrainStatus, state string, now time.Time) {
	if d.ubus == nil {
		return
	}
	data, _ := json.Marshal(SplitBrainEvent{Interface: a.Interface, VHID: a.VHID, State: state, Peer: d.syncPeerName(), Time: now})
	b := d.ubus
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		ctx, cancel := context.WithTimeout(d.bgCtx, sendTimeout)
		defer cancel()
		err := b.cl.Send(ctx, "carp.split_brain", data)
		if err == nil {
			err = b.cl.Notify(ctx, ubusObject, "carp.split_brain", data)
		}
		if err != nil {
			b.undelivered.Add(1)
			b.log.Debug("carp.split_brain event not delivered", "err", err)
		}
	}()
}

// splitBrainStatus fills in the status fields of split brain.
func (d *Daemon) splitBrainStatus(s *Status) {
	s.SplitBrainAlarms = d.split.alarms
	for _, a := range d.split.raised {
		s.SplitBrain = append(s.SplitBrain, a)
	}
	sort.Slice(s.SplitBrain, func(i, j int) bool {
		a, b := s.SplitBrain[i], s.SplitBrain[j]
		return a.Interface < b.Interface || a.Interface == b.Interface && a.VHID < b.VHID
	})
}
