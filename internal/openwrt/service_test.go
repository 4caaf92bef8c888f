package openwrt

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// TestShippedServiceExample: the commented-out service of the shipped
// /etc/config/carpd, uncommented with the example vhid enabled, is valid.
func TestShippedServiceExample(t *testing.T) {
	data, err := os.ReadFile("../../package/carpd/files/carpd.config")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "#config service"):
			in = true
		case strings.HasPrefix(line, "#config") || !strings.HasPrefix(line, "#"):
			in = false
		}
		if in {
			line = line[1:]
		}
		if strings.Contains(line, "option enabled '0'") || strings.Contains(line, "change-me") {
			continue
		}
		b.WriteString(line + "\n")
	}
	cfg, warnings, errs := ParseConfig("carpd.config", []byte(b.String()))
	if len(errs) > 0 || len(cfg.Services) != 1 {
		t.Fatalf("warnings %q errors %v", warnings, errs)
	}
	want := config.Service{Name: "dhcp", Unit: "dnsmasq", VHIDs: []string{"lan"}, Master: "start", Backup: "stop",
		Timeout: 30 * time.Second, Backend: "auto"}
	if s := cfg.Services[0]; s.Name != want.Name || s.Unit != want.Unit || len(s.VHIDs) != 1 || s.VHIDs[0] != "lan" ||
		s.Master != want.Master || s.Backup != want.Backup || s.Timeout != want.Timeout || s.Backend != want.Backend || s.InitScript != "" {
		t.Fatalf("service %+v", s)
	}
}

// TestServiceErrors: every bad value of a service section is an error at
// its own line, with the defaults filled in for a minimal section.
func TestServiceErrors(t *testing.T) {
	t.Setenv(config.TrustedDirsEnv, "")
	file := `config vhid 'lan'
	option interface 'eth0'
	option vhid '1'
	option password 'x'
	option address '10.0.0.1/24'

config service 'dhcp'
	option name 'dnsmasq'
	list vhid 'lan'
	list vhid 'wan'
	option master 'stop'
	option backup 'start'
	option timeout 'x'
	option backend 'foo'
	option initscript '/tmp/x'
	option bogus '1'

config service 'b'
	option name '../x'

config service 'c'

config service 'ok'
	option name 'odhcpd'
	option initscript '/etc/carpd/hooks/odhcpd'
	option timeout '0'
`
	_, warnings, errs := ParseConfig("f", []byte(file))
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`f:10: option 'vhid': no enabled vhid section is called "wan"`,
		`f:11: option 'master': must be one of start restart reload none, not "stop"`,
		`f:12: option 'backup': must be one of stop reload none, not "start"`,
		`f:13: option 'timeout': must be a duration`,
		`f:14: option 'backend': must be one of auto rc initd systemd, not "foo"`,
		`f:15: option 'initscript': must be a script under /etc/init.d/`,
		`f:19: option 'name': "../x" is not a service name`,
		`f:21: option 'name': is required`,
		`f:26: option 'timeout': must be 1 s to 1 h`,
	}
	if len(got) != len(want) {
		t.Fatalf("errors:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: %q, want %q...", i, got[i], want[i])
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `f:16: option "bogus" is not known`) {
		t.Errorf("warnings %q", warnings)
	}

}

// TestLoadConfigServiceScript: an init script that someone other than
// root could change is refused at its line, as carpd would run it as root.
func TestLoadConfigServiceScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the script must otherwise be root's")
	}
	dir := t.TempDir()
	t.Setenv(config.TrustedDirsEnv, dir)
	script := dir + "/svc"
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := dir + "/carpd"
	file := "config service 'x'\n\toption name 'svc'\n\toption initscript '" + script + "'\n"
	if err := os.WriteFile(conf, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, _, errs := LoadConfig(conf); len(errs) != 0 || len(cfg.Services) != 1 {
		t.Fatalf("root's script: %v", errs)
	}
	if err := os.Chmod(script, 0o775); err != nil {
		t.Fatal(err)
	}
	_, _, errs := LoadConfig(conf)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), conf+":3: option 'initscript': carpd will not run "+script+" as root") {
		t.Fatalf("group-writable script: %v", errs)
	}
}
