package config

import (
	"strings"
	"time"
)

// Service actions (`option master`, `option backup`) and backends
// (`option backend`) of a `config service` section (docs/services.md).
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
	ActionReload  = "reload"
	ActionNone    = "none"

	BackendAuto    = "auto"
	BackendRC      = "rc"
	BackendInitd   = "initd"
	BackendSystemd = "systemd"

	DefaultServiceTimeout = 30 * time.Second
	// InitDir holds OpenWrt's (and sysvinit's) init scripts.
	InitDir = "/etc/init.d"
)

// Service is one `config service` section: a program on the router that
// follows the CARP role, running on the master only (docs/services.md).
type Service struct {
	// Name is the UCI section name ("dhcp").
	Name string
	// Unit is the service itself (`option name`): an init script's name
	// or a systemd unit.
	Unit string
	// VHIDs are the names of the vhid sections that decide: the role is
	// master when all of them are MASTER. Empty: every vhid.
	VHIDs []string
	// Master and Backup are the actions run on becoming master and
	// backup (Action* constants).
	Master, Backup string
	// Timeout bounds one action.
	Timeout time.Duration
	// Backend is how the action is run (Backend* constants).
	Backend string
	// InitScript is the init script of the initd backend; empty means
	// InitDir + "/" + Unit.
	InitScript string
}

// DefaultService returns a service section's defaults.
func DefaultService(name string) Service {
	return Service{Name: name, Master: ActionStart, Backup: ActionStop, Timeout: DefaultServiceTimeout, Backend: BackendAuto}
}

// Script returns the init script the initd backend runs.
func (s *Service) Script() string {
	if s.InitScript != "" {
		return s.InitScript
	}
	return InitDir + "/" + s.Unit
}

// ValidUnit reports whether name can name a service: an init script in
// InitDir or a systemd unit, so no slash, no leading dot or dash, and only
// the characters those names use.
func ValidUnit(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.@:", c) >= 0) {
			return false
		}
	}
	return true
}

// ServiceSection prefixes the name of a service section in a FieldError's
// Section: a vhid section may have the same name.
const ServiceSection = "service:"

// validateServices checks the service sections against each other and the
// vhid sections.
func (c *Config) validateServices(add func(sec, opt, format string, a ...any)) {
	vhids := map[string]bool{}
	for i := range c.VHIDs {
		vhids[c.VHIDs[i].Name] = true
	}
	trusted := trustedDirs()
	for i := range c.Services {
		s := &c.Services[i]
		// Service sections may share a name with a vhid section.
		n := ServiceSection + s.Name
		if !ValidUnit(s.Unit) {
			if s.Unit == "" {
				add(n, "name", "is required: the init script or systemd unit to run")
			} else {
				add(n, "name", "%q is not a service name: letters, digits and _ - . @ : (no slash)", s.Unit)
			}
		}
		for _, v := range s.VHIDs {
			if !vhids[v] {
				add(n, "vhid", "no vhid section is called %q", v)
			}
		}
		// One table, not a switch each: the binary is tight
		// (docs/size-budget.md).
		for _, c := range [...][3]string{{"master", s.Master, "start restart reload none"},
			{"backup", s.Backup, "stop reload none"}, {"backend", s.Backend, "auto rc initd systemd"}} {
			if c[1] == "" || strings.Contains(c[1], " ") || !strings.Contains(" "+c[2]+" ", " "+c[1]+" ") {
				add(n, c[0], "must be one of %s, not %q", c[2], c[1])
			}
		}
		if s.Timeout < time.Second || s.Timeout > time.Hour {
			add(n, "timeout", "must be 1 s to 1 h, not %v", s.Timeout)
		}
		// carpd runs the script as root: only where hook programs may
		// be, or in the init scripts' own directory.
		if p := s.InitScript; p != "" && !(cleanAbs(p) && (under(p, HookDirs) || under(p, []string{InitDir}) || under(p, trusted))) {
			add(n, "initscript", "must be a script under %s/, %s or a trusted directory, not %q (carpd runs it as root)",
				InitDir, strings.Join(HookDirs, "/ or ")+"/", p)
		}
	}
}
