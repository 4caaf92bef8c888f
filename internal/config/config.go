// Package config holds carpd's configuration as the daemon consumes it: plain
// values with defaults and validation, independent of the file syntax. The UCI
// file format (/etc/config/carpd) is parsed by package openwrt, which maps its
// sections onto these types and reports errors with file and line.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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
	// ConfigSync is configuration sync (options of `config sync`).
	ConfigSync ConfigSync
	// Tracks are the trackers (`config track` sections), in file order.
	Tracks []Track
	// Services follow the CARP role (`config service` sections), in file
	// order.
	Services []Service
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
	// disables it (`option hotplug_call ''` in the file; an absent option
	// means DefaultHotplugCall). A missing program is skipped (plain
	// Linux). Validate accepts only the paths of CheckPaths.
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
	// Groups are the demotion groups of `list group`, besides
	// DefaultGroup which every vhid is in.
	Groups []string
	// Nodes are the CARP instances of a balanced virtual host (`list
	// node`), sorted by vhid; empty for an ordinary one. See SetNodes.
	Nodes []Node
	// Balancing is `option balancing` as written; BalancingMode is the
	// mode in effect.
	Balancing string
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
	c.Global.checkPaths(add)
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
	c.ConfigSync.validate(add)
	c.validateBalancing(add)
	c.validateTracks(add)
	c.validateServices(add)
	return errs
}

// Where carpd may create, overwrite, remove or run files named in its config.
//
// Whoever may write /etc/config/carpd (a LuCI user with the config ACL, a
// script using uci) is not necessarily root, but carpd runs as root: a path
// option must not let that writer make carpd truncate /etc/shadow, unlink
// ubusd's socket or run a program of the writer's choice. So the control
// socket and the state file live only in carpd's own places in the
// run-time directories, ubusd's socket only under those directories, and the
// hook runner is OpenWrt's hotplug-call or a program in a directory that
// only root can write on a stock system. docs/openwrt-security.md has the
// rules and their reasons.
var (
	// RunDirs are root's run-time directories (on OpenWrt /var is /tmp, so
	// /var/run is /tmp/run). Directly in them only names starting with
	// "carpd" are carpd's.
	RunDirs = []string{"/var/run", "/run", "/tmp/run"}
	// OwnDirs are carpd's own directories: any name under them is carpd's.
	// Not /var/lib/carpd: on OpenWrt /var/lib is /tmp/lib, and whoever
	// creates it first in the world-writable /tmp (any local user) could
	// make carpd a symlink to /etc there.
	OwnDirs = []string{"/var/run/carpd", "/run/carpd", "/tmp/run/carpd"}
	// HookDirs hold hook programs other than DefaultHotplugCall.
	HookDirs = []string{"/etc/carpd/hooks", "/usr/libexec/carpd"}
)

// TrustedDirsEnv names an environment variable with more directories
// (colon-separated, absolute) under which every path option is accepted:
// for tests and installs outside the usual layout. The environment is set
// by whoever starts carpd (procd's init script sets none), which a writer
// of the config file does not control.
const TrustedDirsEnv = "CARPD_TRUSTED_DIRS"

// trustedDirs returns the directories of TrustedDirsEnv that are absolute
// and clean; others are ignored.
func trustedDirs() []string {
	var out []string
	for _, d := range strings.Split(os.Getenv(TrustedDirsEnv), ":") {
		if d != "" && d != "/" && filepath.IsAbs(d) && filepath.Clean(d) == d {
			out = append(out, d)
		}
	}
	return out
}

// under reports whether p lies strictly below one of dirs.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// cleanAbs reports whether p is an absolute path with no ".", ".." or
// doubled or trailing slash, so that the prefix checks mean what they say.
func cleanAbs(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p && p != "/"
}

// ownFile reports whether carpd may create, replace or remove p: a name
// starting with "carpd" directly in a RunDirs directory, anything under
// OwnDirs, or anything under a trusted directory.
func ownFile(p string, trusted []string) bool {
	if !cleanAbs(p) {
		return false
	}
	dir, base := filepath.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	for _, d := range RunDirs {
		if dir == d && strings.HasPrefix(base, "carpd") {
			return true
		}
	}
	return under(p, OwnDirs) || under(p, trusted)
}

// checkPaths enforces the rules above on the path options.
func (g *Global) checkPaths(add func(sec, opt, format string, a ...any)) {
	trusted := trustedDirs()
	const own = "must be a file of carpd's own: /var/run/carpd* (also /run, /tmp/run) or under /var/run/carpd/ (also /run, /tmp/run)"
	if !ownFile(g.ControlSocket, trusted) {
		add("global", "control_socket", "%s, not %q (carpd replaces it at start)", own, g.ControlSocket)
	}
	if g.StateFile != "" && !ownFile(g.StateFile, trusted) {
		add("global", "state_file", "%s, not %q (carpd overwrites it)", own, g.StateFile)
	}
	if p := g.UbusSocket; p != "" && !(cleanAbs(p) && (under(p, RunDirs) || under(p, trusted))) {
		add("global", "ubus_socket", "must be a socket under /var/run/ (or /run, /tmp/run), not %q", p)
	}
	if p := g.HotplugCall; p != "" && p != DefaultHotplugCall && !(cleanAbs(p) && (under(p, HookDirs) || under(p, trusted))) {
		add("global", "hotplug_call", "must be empty (no hooks), %s or a program under %s, not %q (carpd runs it as root)",
			DefaultHotplugCall, strings.Join(HookDirs, "/ or ")+"/", p)
	}
}
