package config

import (
	"path/filepath"
	"strings"
)

// Configuration sync (docs/config-sync.md): the `config sync` section's
// config_role, config, file, config_dir and reload_command options.
const (
	DefaultConfigDir     = "/etc/config"
	DefaultReloadCommand = "/sbin/reload_config" // run only when it exists
	RolePrimary          = "primary"
	RoleSecondary        = "secondary"
)

// ConfigSync is what configuration sync replicates and how.
type ConfigSync struct {
	// Role is RolePrimary (sends), RoleSecondary (receives) or "" (none).
	Role string
	// Packages are UCI package names (files in Dir); Files absolute paths.
	Packages []string
	Files    []string
	// Dir holds the packages; "" is DefaultConfigDir (ConfigDir).
	Dir string
	// ReloadCommand runs after the secondary wrote what came in, with the
	// names written as arguments: "" is DefaultReloadCommand when it
	// exists, NoReload none (Reload).
	ReloadCommand string
}

// NoReload is ConfigSync.ReloadCommand's "run nothing".
const NoReload = "none"

// ConfigDir is Dir or its default.
func (c *ConfigSync) ConfigDir() string {
	if c.Dir == "" {
		return DefaultConfigDir
	}
	return c.Dir
}

// Reload is the program to run after a write: "" for none.
func (c *ConfigSync) Reload() string {
	switch c.ReloadCommand {
	case NoReload:
		return ""
	case "":
		return DefaultReloadCommand
	}
	return c.ReloadCommand
}

// FileDirs are where a synced plain file may live: carpd writes it as
// root on the secondary.
var FileDirs = []string{"/etc"}

// ValidPackage reports whether name is a UCI package name carpd syncs:
// 1-64 of a-z 0-9 _ -, and never carpd's own.
func ValidPackage(name string) bool {
	if name == "" || len(name) > 64 || name == "carpd" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (c *ConfigSync) validate(add func(sec, opt, format string, a ...any)) {
	if c.Role == "" {
		return
	}
	trusted := trustedDirs()
	bad := func(opt, v string) {
		add("sync", opt, "%q is not accepted (docs/uci.md#configuration-sync-options)", v)
	}
	if c.Dir != "" && !cleanAbs(c.Dir) {
		bad("config_dir", c.Dir)
	}
	for _, p := range c.Packages {
		if !ValidPackage(p) {
			bad("config", p)
		}
	}
	for _, f := range c.Files {
		if !cleanAbs(f) || !(under(f, FileDirs) || under(f, trusted)) || len(f) > 255 || strings.ContainsAny(f, " \t\n") ||
			f == filepath.Join(c.ConfigDir(), "carpd") || under(f, []string{"/etc/carpd"}) || f == "/etc/config/carpd" {
			bad("file", f)
		}
	}
	if p := c.Reload(); p != "" && p != DefaultReloadCommand && !(cleanAbs(p) && (under(p, HookDirs) || under(p, trusted))) {
		bad("reload_command", p)
	}
}
