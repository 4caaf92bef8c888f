package config

import (
	"net/netip"
	"time"
)

// DefaultGroup is the demotion group every vhid belongs to (OpenBSD's
// interface group "carp").
const DefaultGroup = "carp"

// Tracker types (`option type` of a `config track` section).
const (
	TrackPing      = "ping"
	TrackInterface = "interface"
	TrackScript    = "script"
	TrackFile      = "file"
	TrackProcess   = "process"
)

// Track is one `config track` section: something outside carpd whose
// health raises a demotion group while it is down (docs/trackers.md).
type Track struct {
	// Name is the UCI section name; it names the demotion source.
	Name string
	// Type is one of the Track* constants.
	Type string
	// Targets are the addresses a ping tracker probes (IPv4 and IPv6).
	Targets []netip.Addr
	// Device is a device or OpenWrt network: a ping tracker sends out of
	// it, an interface tracker follows it. "" for any.
	Device string
	// Interval is the time between rounds; Timeout bounds one round (a
	// ping probe's wait for its reply, a script's run).
	Interval, Timeout time.Duration
	// Reliability: a ping round is good when at least this many targets
	// answer.
	Reliability int
	// Down and Up are the hysteresis: consecutive bad rounds before the
	// tracker counts as down, consecutive good rounds before it is up
	// again.
	Down, Up int
	// Group is the demotion group the tracker raises (DefaultGroup when
	// the option is absent); Weight is what it adds while down.
	Group  string
	Weight int
	// Command is a script tracker's program and arguments (exit 0 is
	// good); Path is a file tracker's file (its integer is the demotion);
	// Process is the name a process tracker looks for.
	Command []string
	Path    string
	Process string
}
