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

// Tracker defaults (docs/trackers.md#options); the timeout's default is
// min(DefaultTrackTimeout, interval).
const (
	DefaultTrackInterval    = time.Second
	DefaultTrackTimeout     = time.Second
	DefaultTrackReliability = 1
	DefaultTrackDown        = 3
	DefaultTrackUp          = 3
	DefaultTrackWeight      = 1
	// MinTrackInterval is the shortest interval: faster probing buys
	// nothing over the suspect mode's fast rounds and loads the peer.
	MinTrackInterval = 50 * time.Millisecond
	// MaxTrackRounds bounds down and up.
	MaxTrackRounds = 1000
	// MaxGroupLen is the longest group name (an interface group name in
	// OpenBSD: IFNAMSIZ-1).
	MaxGroupLen = 15
)

// ReservedSources are the built-in demotion source names
// (docs/carp-protocol.md#demotion); a tracker cannot take one.
var ReservedSources = []string{"maintenance", "manual", "sync", "sync_link", "sync_bulk", "send_errors"}

// DefaultTrack returns a tracker with every default but the timeout
// (which follows the interval: TrackTimeout).
func DefaultTrack(name string) Track {
	return Track{Name: name, Interval: DefaultTrackInterval, Reliability: DefaultTrackReliability,
		Down: DefaultTrackDown, Up: DefaultTrackUp, Group: DefaultGroup, Weight: DefaultTrackWeight}
}

// DefaultTimeout is the timeout of a tracker that sets none:
// min(DefaultTrackTimeout, interval).
func DefaultTimeout(interval time.Duration) time.Duration {
	return min(DefaultTrackTimeout, interval)
}

// ValidGroup reports whether name can name a demotion group:
// [A-Za-z0-9_-]{1,15}.
func ValidGroup(name string) bool {
	if name == "" || len(name) > MaxGroupLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validateTracks checks the trackers and the vhids' groups.
func (c *Config) validateTracks(add func(sec, opt, format string, a ...any)) {
	for i := range c.VHIDs {
		for _, g := range c.VHIDs[i].Groups {
			if !ValidGroup(g) {
				add(c.VHIDs[i].Name, "group", "%q is not a group name: 1-%d of A-Z a-z 0-9 _ -", g, MaxGroupLen)
			}
		}
	}
	seen := map[string]bool{}
	for i := range c.Tracks {
		t := &c.Tracks[i]
		if seen[t.Name] {
			add(t.Name, "", "a second tracker is called %q", t.Name)
		}
		seen[t.Name] = true
		t.validate(add)
	}
}

func (t *Track) validate(add func(sec, opt, format string, a ...any)) {
	n := t.Name
	for _, r := range ReservedSources {
		if n == r {
			add(n, "", "%q is the name of a built-in demotion source; call the tracker something else", n)
		}
	}
	switch t.Type {
	case TrackPing:
		if len(t.Targets) == 0 {
			add(n, "target", "a ping tracker needs at least one target")
		}
		for _, a := range t.Targets {
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				add(n, "target", "%s is not a unicast address", a)
			}
		}
		if len(t.Targets) > 0 && t.Reliability > len(t.Targets) {
			add(n, "reliability", "is %d, but there are only %d targets", t.Reliability, len(t.Targets))
		}
	case TrackInterface:
		if t.Device == "" {
			add(n, "device", "an interface tracker needs the device or OpenWrt network to follow")
		}
	case TrackScript:
		if len(t.Command) == 0 {
			add(n, "command", "a script tracker needs a command")
		}
	case TrackFile:
		if t.Path == "" {
			add(n, "path", "a file tracker needs a path")
		} else if t.Path[0] != '/' {
			add(n, "path", "must be an absolute path, not %q", t.Path)
		}
	case TrackProcess:
		if t.Process == "" {
			add(n, "name", "a process tracker needs the process name")
		} else if len(t.Process) > 255 {
			add(n, "name", "is too long")
		}
	case "":
		add(n, "type", "is required: ping, interface, script, file or process")
	default:
		add(n, "type", "must be ping, interface, script, file or process, not %q", t.Type)
	}
	if t.Interval < MinTrackInterval {
		add(n, "interval", "must be at least %v, not %v", MinTrackInterval, t.Interval)
	}
	if t.Timeout <= 0 {
		add(n, "timeout", "must be positive, not %v", t.Timeout)
	} else if t.Down > 0 && t.Interval >= MinTrackInterval && t.Timeout > t.Interval*time.Duration(t.Down) {
		add(n, "timeout", "%v is longer than interval × down (%v): the tracker could not go down in down rounds", t.Timeout, t.Interval*time.Duration(t.Down))
	}
	if t.Reliability < 1 {
		add(n, "reliability", "must be at least 1, not %d", t.Reliability)
	}
	if t.Down < 1 || t.Down > MaxTrackRounds {
		add(n, "down", "must be 1-%d, not %d", MaxTrackRounds, t.Down)
	}
	if t.Up < 1 || t.Up > MaxTrackRounds {
		add(n, "up", "must be 1-%d, not %d", MaxTrackRounds, t.Up)
	}
	if !ValidGroup(t.Group) {
		add(n, "group", "%q is not a group name: 1-%d of A-Z a-z 0-9 _ -", t.Group, MaxGroupLen)
	}
	if t.Type != TrackFile && (t.Weight < 1 || t.Weight > 255) {
		add(n, "weight", "must be 1-255, not %d", t.Weight)
	}
}
