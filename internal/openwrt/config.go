package openwrt

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// LoadConfig reads and maps the UCI file at path (normally
// config.DefaultPath). A file that cannot be read is one error, the
// *fs.PathError from os.ReadFile, which names the path.
//
// LoadConfig also checks the hook program that the file names
// (config.CheckProgram): one that someone other than root could change is
// an error at the hotplug_call option, as carpd would run it as root.
func LoadConfig(path string) (*config.Config, []string, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, []error{err}
	}
	f, err := ParseUCI(path, data)
	if err != nil {
		return nil, nil, []error{err}
	}
	cfg, warnings, errs := MapConfig(f)
	if cfg != nil && cfg.Global.HotplugCall != "" {
		if err := config.CheckProgram(cfg.Global.HotplugCall); err != nil {
			e := &ConfigError{File: f.Name, Section: "global", Option: "hotplug_call",
				Msg: fmt.Sprintf("carpd will not run %s as root: %v", cfg.Global.HotplugCall, err)}
			for _, s := range f.Sections {
				if s.Type == "carpd" {
					e.Section, e.Line = s.Name, s.Line
					if o := s.Option("hotplug_call"); o != nil {
						e.Line = o.Line
					}
					break
				}
			}
			return nil, warnings, []error{e}
		}
	}
	if cfg != nil {
		if serrs := checkServiceScripts(f, cfg); serrs != nil {
			return nil, warnings, serrs
		}
	}
	return cfg, warnings, errs
}

// ParseConfig parses data as a UCI file called name and maps it onto a
// config.Config, starting from config.Default.
//
// warnings are problems that do not stop the daemon (unknown sections and
// options), each "FILE:LINE: ...". errs holds every problem found: a single
// *ParseError when the file is not valid UCI, otherwise one *ConfigError per
// bad value or broken config.Validate rule, ordered by line. cfg is nil
// whenever errs is not empty.
func ParseConfig(name string, data []byte) (cfg *config.Config, warnings []string, errs []error) {
	f, err := ParseUCI(name, data)
	if err != nil {
		return nil, nil, []error{err}
	}
	return MapConfig(f)
}

// MapConfig maps an already parsed UCI file onto a config.Config; see
// ParseConfig. f.Name is used as the file name in messages.
func MapConfig(f *File) (cfg *config.Config, warnings []string, errs []error) {
	m := &mapper{
		file:  f.Name,
		cfg:   config.Default(),
		vhids: map[string]*Section{},
		bad:   map[badKey]bool{},
	}
	for _, s := range f.Sections {
		switch s.Type {
		case "carpd":
			m.global(s)
		case "vhid":
			m.vhid(s)
		case "sync":
			m.sync(s)
		case "track":
			m.track(s)
		case "service":
			m.service(s)
		default:
			m.warnf(s.Line, "section type %q is not known to this version; ignored", s.Type)
		}
	}
	m.serviceVHIDs()
	m.validate()
	m.trackWarnings()

	// Sections are visited in file order, but a reopened section (a second
	// `config vhid 'lan'`) and Validate's errors break line order; sort so
	// the output reads top to bottom. Line 0 (no line) comes first.
	sort.SliceStable(m.warnings, func(i, j int) bool { return m.warnings[i].line < m.warnings[j].line })
	for _, w := range m.warnings {
		warnings = append(warnings, w.text)
	}
	sort.SliceStable(m.errs, func(i, j int) bool { return m.errs[i].Line < m.errs[j].Line })
	for _, e := range m.errs {
		errs = append(errs, e)
	}
	// A half-mapped config must not be used by mistake: the daemon keeps
	// its old config (or refuses to start) and prints errs.
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	return m.cfg, warnings, nil
}

// mapper collects the Config, warnings and errors for one file.
type mapper struct {
	file     string         // file name for messages
	cfg      *config.Config // starts as config.Default()
	warnings []warning
	errs     []*ConfigError

	globalSec *Section            // the carpd section, if any
	syncSec   *Section            // the sync section, if any
	vhids     map[string]*Section // enabled vhid sections by name
	tracks    map[string]*Section // track sections by name
	services  map[string]*Section // service sections by name
	// bad marks options already reported, so Validate does not report the
	// same option again ("vhid is required" after "vhid: not a number").
	bad map[badKey]bool
}

// badKey is one option of one section; sections are compared by pointer
// because a generated name could in theory repeat an explicit one.
type badKey struct {
	s   *Section
	opt string
}

// warning is a finished "FILE:LINE: ..." message and its line for sorting.
type warning struct {
	line int
	text string
}

func (m *mapper) warnf(line int, format string, a ...any) {
	text := fmt.Sprintf("%s:%d: ", m.file, line) + fmt.Sprintf(format, a...)
	m.warnings = append(m.warnings, warning{line, text})
}

// errorf records an error about option o of section s at line.
func (m *mapper) errorf(s *Section, o *Option, line int, format string, a ...any) {
	e := &ConfigError{File: m.file, Line: line, Section: s.Name, Msg: fmt.Sprintf(format, a...)}
	if o != nil {
		e.Option = o.Name
		m.bad[badKey{s, o.Name}] = true
	}
	m.errs = append(m.errs, e)
}

// unknown warns about an option this version does not know, most often a
// typo: visible in the log, but not fatal, so a config written for a newer
// carpd still starts an older one.
func (m *mapper) unknown(o *Option) {
	m.warnf(o.Line, "option %q is not known; ignored", o.Name)
}

// global maps the `config carpd` section onto Config.Global.
func (m *mapper) global(s *Section) {
	if m.globalSec != nil {
		m.errorf(s, nil, s.Line, "only one carpd section is allowed; the first is at line %d", m.globalSec.Line)
		return
	}
	m.globalSec = s
	g := &m.cfg.Global
	// `option hotplug_call ''` turns the hooks off. libuci (and so
	// ParseUCI) drops an option set to '', which would leave the default;
	// the parser keeps the statement in Cleared so that it still means
	// "none". An option with a value later in the section wins.
	if _, ok := s.Cleared["hotplug_call"]; ok && s.Option("hotplug_call") == nil {
		g.HotplugCall = ""
	}
	for _, o := range s.Options {
		switch o.Name {
		case "enabled":
			// Read by the init script (a disabled carpd is not started);
			// checked here so that a typo is an error, not a warning.
			var enabled bool
			m.boolean(s, o, &enabled)
		case "preempt":
			m.boolean(s, o, &g.Preempt)
		case "log_level":
			m.str(s, o, &g.LogLevel)
		case "control_socket":
			m.str(s, o, &g.ControlSocket)
		case "demote_to_skew":
			m.boolean(s, o, &g.DemoteToSkew)
		case "state_file":
			m.str(s, o, &g.StateFile)
		case "ubus_socket":
			m.str(s, o, &g.UbusSocket)
		case "hotplug_call":
			m.str(s, o, &g.HotplugCall)
			// 'none' also turns the hooks off, and unlike '' it survives
			// `uci commit`, which drops empty options.
			if g.HotplugCall == "none" {
				g.HotplugCall = ""
			}
		case "hotplug_timeout":
			var secs uint8
			m.integer(s, o, 1, 255, &secs)
			if secs > 0 {
				g.HotplugTimeout = time.Duration(secs) * time.Second
			}
		default:
			m.unknown(o)
		}
	}
}

// vhid maps one `config vhid` section onto a config.VHID.
func (m *mapper) vhid(s *Section) {
	if o := s.Option("enabled"); o != nil {
		enabled := true
		// A bad value is an error; the section is then mapped anyway so
		// that its other errors are reported too.
		if m.boolean(s, o, &enabled) && !enabled {
			return
		}
	}
	v := config.VHID{Name: s.Name, AdvBase: 1}
	var nodes []config.Node
	for _, o := range s.Options {
		switch o.Name {
		case "enabled":
			// Handled above.
		case "interface":
			m.str(s, o, &v.Interface)
		case "vhid":
			m.integer(s, o, 1, 255, &v.VHID)
		case "advbase":
			m.integer(s, o, 0, 255, &v.AdvBase)
		case "advskew":
			m.integer(s, o, 0, 254, &v.AdvSkew)
		case "password":
			m.str(s, o, &v.Password)
		case "address":
			v.Addresses = m.addresses(s, o)
		case "peer":
			v.Peers = m.peers(s, o)
		case "group":
			v.Groups = m.vhidGroups(s, o)
		case "node":
			nodes = m.nodes(s, o)
		case "balancing":
			m.str(s, o, &v.Balancing)
		case "preempt":
			var b bool
			if m.boolean(s, o, &b) {
				v.Preempt = &b
			}
		default:
			m.unknown(o)
		}
	}
	m.balancedVHID(s, &v, nodes)
	m.passwordWarning(s, &v)
	m.vhids[s.Name] = s
	m.cfg.VHIDs = append(m.cfg.VHIDs, v)
}

// ExamplePassword is the password of the example vhid in the package's
// /etc/config/carpd: a router that kept it authenticates with a key that
// everybody knows.
const ExamplePassword = "change-me"

// passwordWarning warns about a vhid that anyone on its link can take over:
// no password (the all-zero key) or the shipped example one. A warning, not
// an error: the BSDs and ucarp allow both and a mixed group must still
// start.
func (m *mapper) passwordWarning(s *Section, v *config.VHID) {
	switch v.Password {
	case "":
		m.warnf(s.Line, "vhid section %q has no password: adverts use the all-zero key, so anyone on %s can take its addresses over", s.Name, v.Interface)
	case ExamplePassword:
		m.warnf(s.Option("password").Line, "vhid section %q uses the example password %q: set a secret one on every router of the group", s.Name, ExamplePassword)
	}
}

// scalar returns the single value of an option, or reports a list.
func (m *mapper) scalar(s *Section, o *Option) (string, bool) {
	if o.List || len(o.Values) != 1 {
		m.errorf(s, o, o.Line, "must be a single value: use option, not list")
		return "", false
	}
	return o.Values[0], true
}

func (m *mapper) str(s *Section, o *Option, dst *string) {
	if v, ok := m.scalar(s, o); ok {
		*dst = v
	}
}

// boolean parses the spellings of OpenWrt's config_get_bool (functions.sh),
// which are case-sensitive. It reports whether *dst was set.
func (m *mapper) boolean(s *Section, o *Option, dst *bool) bool {
	v, ok := m.scalar(s, o)
	if !ok {
		return false
	}
	switch v {
	case "1", "yes", "on", "true", "enabled":
		*dst = true
	case "0", "no", "off", "false", "disabled":
		*dst = false
	default:
		m.errorf(s, o, o.Line, "must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not %q", v)
		return false
	}
	return true
}

// integer parses a decimal integer in [lo, hi]; on error *dst keeps its
// default.
func (m *mapper) integer(s *Section, o *Option, lo, hi int, dst *uint8) {
	v, ok := m.scalar(s, o)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi || !isDigits(v) {
		m.errorf(s, o, o.Line, "must be an integer %d-%d, not %q", lo, hi, v)
		return
	}
	*dst = uint8(n)
}

// isDigits rejects the signs and spaces strconv would accept or that would
// make "+1" and "1" mean the same vhid.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// addresses parses every value of the address list (or option): a prefix
// "A.B.C.D/len" or "X::Y/len", or a bare address meaning a host prefix.
// Each bad value is reported at its own line.
func (m *mapper) addresses(s *Section, o *Option) []netip.Prefix {
	var out []netip.Prefix
	for i, v := range o.Values {
		p, err := parseAddress(v)
		if err != nil {
			m.errorf(s, o, o.ValueLines[i], "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func parseAddress(v string) (netip.Prefix, error) {
	bad := fmt.Errorf("must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not %q", v)
	var p netip.Prefix
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Zone() != "" {
			return p, bad
		}
		p = netip.PrefixFrom(a, a.BitLen())
	} else if p, err = netip.ParsePrefix(v); err != nil {
		return p, bad
	}
	// A virtual address is what the master answers ARP/ND for, so it has
	// to be a unicast address (config.Validate checks only peers).
	if a := p.Addr(); a.IsUnspecified() || a.IsMulticast() {
		return p, fmt.Errorf("%s is not a unicast address", a)
	}
	return p, nil
}

// peers parses every value of the peer list (or option) as an address.
func (m *mapper) peers(s *Section, o *Option) []netip.Addr {
	var out []netip.Addr
	for i, v := range o.Values {
		a, err := netip.ParseAddr(v)
		switch {
		case err != nil || a.Zone() != "":
			m.errorf(s, o, o.ValueLines[i], "must be an IP address, not %q", v)
		case a.IsMulticast() || a.IsUnspecified():
			// config.Validate says the same, but only knows the option,
			// not which line of the list holds the bad peer.
			m.errorf(s, o, o.ValueLines[i], "%s is not a unicast address", a)
		default:
			out = append(out, a)
		}
	}
	return out
}

// globalOptions are the options of the carpd section. config.Validate names
// that section "global" whatever it is called in the file, so these tell a
// global error apart from one about a vhid section that is named "global".
var globalOptions = map[string]bool{
	"preempt": true, "log_level": true, "control_socket": true,
	"demote_to_skew": true, "state_file": true, "ubus_socket": true,
	"hotplug_call": true,
}

// validate runs config.Validate and gives each error the line of the option
// it names, or of its section when the option is not in the file.
func (m *mapper) validate() {
	for _, fe := range m.cfg.Validate() {
		if ts := m.tracks[fe.Section]; ts != nil && fe.Section != "global" && fe.Section != "sync" {
			m.trackValidateError(ts, fe)
			continue
		}
		var s *Section
		switch {
		case fe.Section == "global" && globalOptions[fe.Option]:
			s = m.globalSec
		case fe.Section == "sync" && m.syncSec != nil:
			s = m.syncSec
		case strings.HasPrefix(fe.Section, config.ServiceSection):
			s = m.services[strings.TrimPrefix(fe.Section, config.ServiceSection)]
		case m.vhids[fe.Section] != nil:
			s = m.vhids[fe.Section]
		case fe.Section == "global":
			s = m.globalSec
		}
		e := &ConfigError{File: m.file, Section: fe.Section, Option: fe.Option, Msg: fe.Msg}
		if s != nil {
			if m.bad[badKey{s, fe.Option}] {
				continue
			}
			e.Section, e.Line = s.Name, s.Line
			if o := s.Option(fe.Option); o != nil {
				e.Line = o.Line
			}
		}
		m.errs = append(m.errs, e)
	}
}
