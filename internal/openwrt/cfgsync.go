package openwrt

import "github.com/carpd/carpd/internal/config"

// configSync maps the configuration-sync options of `config sync` onto
// config.ConfigSync (docs/config-sync.md).
func (m *mapper) configSync(s *Section, o *Option) {
	c := &m.cfg.ConfigSync
	switch o.Name {
	case "config_role":
		if v, ok := m.scalar(s, o); ok {
			switch v {
			case "none", "":
				c.Role = ""
			case config.RolePrimary, config.RoleSecondary:
				c.Role = v
			default:
				m.errorf(s, o, o.Line, "must be primary, secondary or none, not %q", v)
			}
		}
	case "config":
		for _, v := range o.Values {
			if v == "carpd" {
				// Each router's own: advskew, the peer, the key.
				m.warnf(o.Line, "package carpd is never synced (its options are each router's own); skipped")
				continue
			}
			c.Packages = append(c.Packages, v)
		}
	case "file":
		c.Files = append(c.Files, o.Values...)
	case "config_dir":
		m.str(s, o, &c.Dir)
	case "reload_command":
		m.str(s, o, &c.ReloadCommand)
		if c.ReloadCommand == "" {
			c.ReloadCommand = config.NoReload // 'none' survives uci commit, unlike ''
		}
	}
}

// configSyncCleared: `option reload_command ”` means no reload (libuci
// drops the option; ParseUCI keeps the statement in Cleared).
func (m *mapper) configSyncCleared(s *Section) {
	if _, ok := s.Cleared["reload_command"]; ok && s.Option("reload_command") == nil {
		m.cfg.ConfigSync.ReloadCommand = config.NoReload
	}
}
