// Package config holds carpd's configuration as the daemon consumes it: plain
// values with defaults and validation, independent of the file syntax. The UCI
// file format (/etc/config/carpd) is parsed by package openwrt, which maps its
// sections onto these types and reports errors with file and line.
package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults for the global section.
const (
	DefaultPath           = "/etc/config/carpd"
	DefaultControlSocket  = "/var/run/carpd.sock"
	DefaultLogLevel       = "info"
	DefaultUbusSocket     = "/var/run/ubus/ubus.sock"
	DefaultHotplugCall    = "/sbin/hotplug-call"
	DefaultHotplugTimeout = 30 * time.Second
)

// MaxPasswordLen is the longest CARP passphrase carpd accepts. The BSD kernels
// copy the passphrase into a 20-byte buffer with a NUL terminator and silently
// use only the first 19 bytes; ucarp refuses 20 or more. carpd refuses instead
// of truncating, so two nodes never disagree about the key without a word.
const MaxPasswordLen = 19

// Config is the whole daemon configuration.
type Config struct {
	Global Global
	VHIDs  []VHID
	Sync   Sync
}

// Global is the `config carpd 'global'` section.
type Global struct {
	// Preempt lets a BACKUP with a better (shorter) advertisement interval
	// take over from a worse MASTER (OpenBSD net.inet.carp.preempt).
	Preempt bool
	// LogLevel is one of debug, info, warn, error.
	LogLevel string
	// ControlSocket is the path of the local control socket used by the CLI.
	ControlSocket string
	// DemoteToSkew mirrors the demotion counter into the advertised advskew
	// (FreeBSD semantics, clamped to 240) in addition to the OpenBSD demote
	// byte, so FreeBSD and ucarp peers with preempt react to a demotion.
	DemoteToSkew bool
	// StateFile keeps maintenance mode across restarts of the daemon. Empty
	// means ControlSocket + ".state", so instances side by side never share
	// one.
	StateFile string
	// UbusSocket is ubusd's socket; the daemon runs on without ubusd and
	// keeps retrying in the background.
	UbusSocket string
	// HotplugCall runs /etc/hotplug.d/carp/* on each transition; empty
	// disables it. A missing program is skipped (plain Linux).
	HotplugCall string
	// HotplugTimeout bounds one run of the hotplug scripts.
	HotplugTimeout time.Duration
}

// StatePath returns the state file in use.
func (g *Global) StatePath() string {
	if g.StateFile != "" {
		return g.StateFile
	}
	return g.ControlSocket + ".state"
}

// VHID is one `config vhid` section: a virtual host on one interface.
type VHID struct {
	// Name is the UCI section name ("lan"), or a generated one for an
	// anonymous section.
	Name      string
	Interface string
	VHID      uint8
	AdvBase   uint8
	AdvSkew   uint8
	// Password is the CARP passphrase, at most MaxPasswordLen bytes. Empty
	// means the all-zero key, as on the BSDs.
	Password  string
	Addresses []netip.Prefix
	// Peers, when set, replace multicast with unicast adverts to each peer.
	Peers []netip.Addr
	// Preempt overrides Global.Preempt for this vhid when non-nil.
	Preempt *bool
}

// Interval returns the advertisement interval advbase + advskew/256 s.
func (v *VHID) Interval() time.Duration {
	return time.Duration(v.AdvBase)*time.Second + time.Duration(v.AdvSkew)*time.Second/256
}

// Key returns a stable identity for the vhid: interface and vhid number.
// Two configs with the same key describe the same virtual host (used by
// reload to keep state).
func (v *VHID) Key() string { return fmt.Sprintf("%s/%d", v.Interface, v.VHID) }

// Default returns a Config with every global default filled in and no vhids.
func Default() *Config {
	return &Config{Sync: DefaultSync(), Global: Global{
		Preempt:        false,
		LogLevel:       DefaultLogLevel,
		ControlSocket:  DefaultControlSocket,
		UbusSocket:     DefaultUbusSocket,
		HotplugCall:    DefaultHotplugCall,
		HotplugTimeout: DefaultHotplugTimeout,
	}}
}

// FieldError is a validation error that names the section and option it is
// about, so the file parser can add a file name and line number.
type FieldError struct {
	Section string // UCI section name, "" for whole-config errors
	Option  string // option name, "" for the section itself
	Msg     string
}

func (e *FieldError) Error() string {
	switch {
	case e.Section == "":
		return e.Msg
	case e.Option == "":
		return fmt.Sprintf("section %q: %s", e.Section, e.Msg)
	}
	return fmt.Sprintf("section %q option %q: %s", e.Section, e.Option, e.Msg)
}

// Validate checks the semantic rules that no single option can check alone.
// It returns every problem, not just the first.
func (c *Config) Validate() []*FieldError {
	var errs []*FieldError
	add := func(sec, opt, format string, a ...any) {
		errs = append(errs, &FieldError{Section: sec, Option: opt, Msg: fmt.Sprintf(format, a...)})
	}
	switch c.Global.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("global", "log_level", "must be debug, info, warn or error, not %q", c.Global.LogLevel)
	}
	seen := map[string]string{}
	for i := range c.VHIDs {
		v := &c.VHIDs[i]
		if v.Interface == "" {
			add(v.Name, "interface", "is required")
		}
		if v.VHID == 0 {
			add(v.Name, "vhid", "is required and must be 1-255")
		}
		if len(v.Password) > MaxPasswordLen {
			add(v.Name, "password", "is %d bytes; CARP keys hold at most %d (the BSDs would silently use only the first %d bytes, ucarp refuses it)", len(v.Password), MaxPasswordLen, MaxPasswordLen)
		}
		if v.AdvBase == 0 && v.AdvSkew == 0 {
			add(v.Name, "advskew", "advbase 0 needs a non-zero advskew (the interval is advskew/256 s)")
		}
		if len(v.Addresses) == 0 {
			add(v.Name, "address", "at least one virtual address is required")
		}
		for _, p := range v.Peers {
			if p.IsMulticast() || p.IsUnspecified() {
				add(v.Name, "peer", "%s is not a unicast address", p)
			}
		}
		if other, dup := seen[v.Key()]; dup && v.VHID != 0 {
			add(v.Name, "vhid", "vhid %d on %s is already used by section %q", v.VHID, v.Interface, other)
		} else {
			seen[v.Key()] = v.Name
		}
	}
	c.Sync.validate(add)
	return errs
}
