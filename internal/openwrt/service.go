package openwrt

import (
	"fmt"

	"github.com/carpd/carpd/internal/config"
)

// service maps one `config service` section onto a config.Service
// (docs/services.md). config.Validate checks the values; its errors land on
// the option's line (validate).
func (m *mapper) service(s *Section) {
	if m.services == nil {
		m.services = map[string]*Section{}
	}
	if o := s.Option("enabled"); o != nil {
		enabled := true
		if m.boolean(s, o, &enabled) && !enabled {
			return
		}
	}
	sv := config.DefaultService(s.Name)
	for _, o := range s.Options {
		switch o.Name {
		case "enabled":
		case "name":
			m.str(s, o, &sv.Unit)
		case "vhid":
			sv.VHIDs = append([]string(nil), o.Values...)
			// The vhid sections may come later in the file: checked
			// by serviceVHIDs.
		case "master":
			m.str(s, o, &sv.Master)
		case "backup":
			m.str(s, o, &sv.Backup)
		case "timeout":
			m.duration(s, o, &sv.Timeout)
		case "backend":
			m.str(s, o, &sv.Backend)
		case "initscript":
			m.str(s, o, &sv.InitScript)
		default:
			m.unknown(o)
		}
	}
	m.services[s.Name] = s
	m.cfg.Services = append(m.cfg.Services, sv)
}

// checkServiceScripts refuses the init scripts carpd would run as root
// that someone other than root could change (config.CheckProgram): the
// initscript option, or /etc/init.d/NAME where the initd backend may run
// it.
func checkServiceScripts(f *File, cfg *config.Config) []error {
	var errs []error
	for _, sv := range cfg.Services {
		if sv.Backend == config.BackendRC || sv.Backend == config.BackendSystemd && sv.InitScript == "" {
			continue
		}
		p := sv.Script()
		if err := config.CheckProgram(p); err != nil {
			e := &ConfigError{File: f.Name, Section: sv.Name, Option: "initscript",
				Msg: fmt.Sprintf("carpd will not run %s as root: %v", p, err)}
			for _, s := range f.Sections {
				if s.Type == "service" && s.Name == sv.Name {
					e.Line = s.Line
					if o := s.Option("initscript"); o != nil {
						e.Line = o.Line
					}
				}
			}
			errs = append(errs, e)
		}
	}
	return errs
}

// serviceVHIDs reports, at its own line, each vhid a service lists that no
// enabled vhid section has (config.Validate would name only the option).
func (m *mapper) serviceVHIDs() {
	for _, sv := range m.cfg.Services {
		s := m.services[sv.Name]
		o := s.Option("vhid")
		for i, v := range sv.VHIDs {
			if m.vhids[v] == nil {
				m.errorf(s, o, o.ValueLines[i], "no enabled vhid section is called %q", v)
			}
		}
	}
}
