package openwrt

import (
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
	"github.com/google/go-cmp/cmp"
)

const syncHead = `config sync 'sync'
	option interface 'eth2'
	option peer '10.99.0.2'
	option key '49c5fd8b3fb2f4073d631bb776ff16dfeada120782cdfa8f000dc22be967a897'
`

func TestConfigSyncOptions(t *testing.T) {
	cfg, warns, errs := ParseConfig("f", []byte(syncHead+`	option config_role 'secondary'
	list config 'firewall'
	list config 'dhcp'
	list config 'carpd'
	list file '/etc/firewall.user'
	option config_dir '/etc/config'
	option reload_command '/usr/libexec/carpd/reload'
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "package carpd is never synced") {
		t.Errorf("warnings %v, want the one about carpd", warns)
	}
	want := config.ConfigSync{Role: "secondary", Packages: []string{"firewall", "dhcp"}, Files: []string{"/etc/firewall.user"},
		Dir: "/etc/config", ReloadCommand: "/usr/libexec/carpd/reload"}
	if d := cmp.Diff(want, cfg.ConfigSync); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// The defaults: no role, /etc/config, reload_config.
	cfg, _, errs = ParseConfig("f", []byte(syncHead))
	if cs := cfg.ConfigSync; len(errs) > 0 || cs.Role != "" || cs.ConfigDir() != "/etc/config" || cs.Reload() != "/sbin/reload_config" {
		t.Errorf("defaults %+v %v", cfg.ConfigSync, errs)
	}
	cfg, _, errs = ParseConfig("f", []byte(syncHead+"\toption reload_command 'none'\n"))
	if len(errs) > 0 || cfg.ConfigSync.Reload() != "" {
		t.Errorf("reload_command none: %+v %v", cfg.ConfigSync, errs)
	}
	// none, and an empty reload_command (no reload).
	cfg, _, errs = ParseConfig("f", []byte(syncHead+"\toption config_role 'none'\n\toption reload_command ''\n"))
	if len(errs) > 0 || cfg.ConfigSync.Role != "" || cfg.ConfigSync.Reload() != "" {
		t.Errorf("none: %+v %v", cfg.ConfigSync, errs)
	}
}

func TestConfigSyncErrors(t *testing.T) {
	for _, c := range []struct{ opts, want string }{
		{"option config_role 'master'", "must be primary, secondary or none"},
		{"option config_role 'primary'\n\tlist config '../shadow'", "is not accepted"},
		{"option config_role 'primary'\n\tlist config 'Fire wall'", "is not accepted"},
		{"option config_role 'primary'\n\tlist file '/etc/../root/x'", "is not accepted"},
		{"option config_role 'primary'\n\tlist file 'etc/x'", "is not accepted"},
		{"option config_role 'primary'\n\tlist file '/root/.ssh/authorized_keys'", "is not accepted"},
		{"option config_role 'primary'\n\tlist file '/etc/config/carpd'", "is not accepted"},
		{"option config_role 'primary'\n\tlist file '/etc/carpd/hooks/x'", "is not accepted"},
		{"option config_role 'primary'\n\toption config_dir 'etc/config'", "is not accepted"},
		{"option config_role 'primary'\n\toption reload_command '/tmp/x'", "is not accepted"},
	} {
		_, _, errs := ParseConfig("f", []byte(syncHead+"\t"+c.opts+"\n"))
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.opts, errs, c.want)
		}
	}
}
