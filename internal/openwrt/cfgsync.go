package openwrt

import "github.com/carpd/carpd/internal/config"

// configSyncCleared: `option reload_command ”` means no reload (libuci
// drops the option; ParseUCI keeps the statement in Cleared).
func (m *mapper) configSyncCleared(s *Section) {
	if _, ok := s.Cleared["reload_command"]; ok && s.Option("reload_command") == nil {
		m.cfg.ConfigSync.ReloadCommand = config.NoReload
	}
}
