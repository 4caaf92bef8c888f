package daemon

import (
	"os"
	"slices"
	"sort"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/demote"
	"github.com/carpd/carpd/internal/track"
)

// Status is the whole daemon status: `carpd status --json`.
type Status struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Now is the daemon's clock when the status was taken: clients (the
	// LuCI page) compute "since" and "seen ago" from it, not from their
	// own clock.
	Now         time.Time          `json:"now"`
	Started     time.Time          `json:"started"`
	Reloads     int                `json:"reloads"`
	Demotion    DemotionStatus     `json:"demotion"`
	VHIDs       []VHIDStatus       `json:"vhids"`
	Interfaces  []InterfaceStatus  `json:"interfaces"`
	Transitions []TransitionRecord `json:"transitions"`
	Sync        SyncStatus         `json:"sync"`
	// Trackers are the `config track` sections' trackers, by name.
	Trackers []track.Status `json:"trackers"`
	// HotplugCall is the hook program run on each transition; empty when
	// hooks are off (option hotplug_call '').
	HotplugCall string `json:"hotplug_call"`
	// StateFileError says why the state file could not be written the
	// last time: maintenance mode as it is now will not survive a restart.
	StateFileError string `json:"state_file_error,omitempty"`
	// TransitionsDropped counts transitions that reached neither status,
	// the hooks nor ubus because the daemon did not keep up.
	TransitionsDropped uint64 `json:"transitions_dropped,omitempty"`
	// SplitBrain: vhids MASTER here and on the sync peer (splitbrain.go).
	SplitBrain       []SplitBrainStatus `json:"split_brain,omitempty"`
	SplitBrainAlarms uint64             `json:"split_brain_alarms"`
	// Services are the `config service` sections and their roles
	// (services.go), in config order.
	Services []ServiceStatus `json:"services"`
	// MaintenanceWait: the last maintenance --wait (maintenance.go).
	MaintenanceWait *MaintenanceWaitStatus `json:"maintenance_wait,omitempty"`
}

// DemotionStatus breaks the demotion down by source. Manual, Link, Sync
// and Maintenance are the group carp's sources of those names, as before
// demotion groups; Groups has every group with its named sources.
type DemotionStatus struct {
	Manual      int           `json:"manual"`
	Link        int           `json:"link"`
	Sync        int           `json:"sync"`
	Maintenance bool          `json:"maintenance"`
	Groups      []GroupStatus `json:"groups"`
}

// VHIDStatus is one vhid in status: the vhost's own status, and where its
// demotion comes from.
type VHIDStatus struct {
	carp.Status
	// Groups are the vhid's demotion groups: carp, then its list group.
	Groups []string `json:"groups"`
	// DemotionSources is every non-zero source that counts for the
	// vhid: its groups', then its own (group "").
	DemotionSources []demote.Source `json:"demotion_sources"`
	// Balance: the vhid is a node of a balanced section (balance.go).
	Balance *BalanceStatus `json:"balance,omitempty"`
}

// SyncStatus is the state-sync part of the status.
type SyncStatus struct {
	Enabled   bool   `json:"enabled"`
	Interface string `json:"interface,omitempty"`
	Error     string `json:"error,omitempty"`
	ctsync.Status
	// Leases is the DHCP lease sync (leases.go).
	Leases LeaseStatus `json:"leases"`
	// Config is configuration sync (cfgsync.go); absent when it is off.
	Config *ConfigSyncStatus `json:"config,omitempty"`
}

// InterfaceStatus is one interface carpd runs CARP on.
type InterfaceStatus struct {
	Name   string          `json:"name"`
	LinkUp bool            `json:"link_up"`
	Error  string          `json:"error,omitempty"`
	Drops  carp.IfaceStats `json:"drops"`
}

// status runs on the loop. It reads the vhosts', interfaces' and sync
// engine's published snapshots, which takes their locks for a copy (never
// waits for their goroutines).
func (d *Daemon) status() Status {
	d.updateDemotion() // the derived sources as they are now (the sync engine's, say)
	manual, _ := d.sources.Get(config.DefaultGroup, demote.SourceManual)
	s := Status{Version: d.opts.Version, PID: os.Getpid(), Now: time.Now(), Started: d.started, Reloads: d.reloads,
		Demotion: DemotionStatus{Manual: manual.Value, Link: d.linkDemotion(), Sync: d.syncDemotion(), Maintenance: d.maint,
			Groups: d.groupStatus()},
		HotplugCall: d.hooks, Transitions: slices.Clone(d.recent), TransitionsDropped: d.eventsDropped.Load()}
	if d.stateErr != nil {
		s.StateFileError = d.stateErr.Error()
	}
	s.Sync.Enabled, s.Sync.Interface = d.cfg.Sync.Enabled, d.cfg.Sync.Interface
	var eng leaseEngine
	if d.sync != nil {
		s.Sync.Status = d.sync.engine.Status()
		eng = d.sync.engine
	}
	s.Sync.Leases = d.leases.status(eng)
	if d.syncErr != nil {
		s.Sync.Error = d.syncErr.Error()
	}
	s.Sync.Config = d.cfgs.status()
	for _, ve := range d.vhosts {
		if ve.v != nil {
			st := ve.v.Status()
			if ve.netw {
				st.Network = ve.cfg.Interface
			}
			s.VHIDs = append(s.VHIDs, VHIDStatus{Status: st, Groups: groupsOf(ve.cfg),
				DemotionSources: d.vhidSources(ve, st.SendErrorsSince), Balance: d.balanceStatus(ve.cfg)})
			continue
		}
		st := carp.Status{Interface: ve.cfg.Interface, VHID: ve.cfg.VHID,
			State: carp.Init.String(), AdvBase: ve.cfg.AdvBase, AdvSkew: ve.cfg.AdvSkew,
			Demotion: d.demotion(ve), Addresses: prefixStrings(ve.cfg.Addresses)}
		if ve.err != nil {
			st.Error = ve.err.Error()
		}
		s.VHIDs = append(s.VHIDs, VHIDStatus{Status: st, Groups: groupsOf(ve.cfg), DemotionSources: d.vhidSources(ve, time.Time{}),
			Balance: d.balanceStatus(ve.cfg)})
	}
	for _, ie := range d.ifaces {
		is := InterfaceStatus{Name: ie.name, LinkUp: ie.linkUp}
		if ie.err != nil {
			is.Error = ie.err.Error()
		}
		if ie.iface != nil {
			is.Drops = ie.iface.Stats()
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	sort.Slice(s.VHIDs, func(i, j int) bool {
		if s.VHIDs[i].Interface != s.VHIDs[j].Interface {
			return s.VHIDs[i].Interface < s.VHIDs[j].Interface
		}
		return s.VHIDs[i].VHID < s.VHIDs[j].VHID
	})
	sort.Slice(s.Interfaces, func(i, j int) bool { return s.Interfaces[i].Name < s.Interfaces[j].Name })
	if s.VHIDs == nil {
		s.VHIDs = []VHIDStatus{}
	}
	s.Trackers = d.trackerStatus()
	if s.Transitions == nil {
		s.Transitions = []TransitionRecord{}
	}
	s.Services = d.serviceStatus()
	d.splitBrainStatus(&s)
	d.maintenanceWaitStatus(&s)
	return s
}

// Status returns a snapshot of everything, taken on the loop.
func (d *Daemon) Status() (Status, error) {
	var s Status
	err := d.do(func() { s = d.status() })
	return s, err
}
