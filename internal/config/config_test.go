package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := VHID{Name: "lan", Interface: "eth0", VHID: 1, AdvBase: 1,
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}
	c := Default()
	c.VHIDs = []VHID{good}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	bad := good
	bad.Name, bad.VHID, bad.AdvBase, bad.AdvSkew = "b", 2, 0, 0
	bad.Password = strings.Repeat("x", 20)
	bad.Peers = []netip.Addr{netip.MustParseAddr("224.0.0.18")}
	dup := good
	dup.Name = "dup"
	c.VHIDs = []VHID{good, bad, dup}
	c.Global.LogLevel = "loud"
	errs := c.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`section "global" option "log_level"`,
		`section "b" option "password": is 20 bytes`,
		`section "b" option "advskew": advbase 0`,
		`section "b" option "peer": 224.0.0.18 is not a unicast`,
		`section "dup" option "vhid": vhid 1 on eth0 is already used by section "lan"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestKey(t *testing.T) {
	v := VHID{AdvBase: 1, AdvSkew: 128}
	if v.Key() != "/0" {
		t.Errorf("key %q", v.Key())
	}
}

// TestValidatePaths: the path options name only carpd's own files and hook
// programs; TrustedDirsEnv adds directories.
func TestValidatePaths(t *testing.T) {
	t.Setenv(TrustedDirsEnv, "")
	c := Default()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	c.Global.HotplugCall = ""
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("no hooks: %v", errs)
	}
	c.Global.ControlSocket = "/etc/passwd"
	c.Global.StateFile = "/tmp/run/carpd.state"
	c.Global.UbusSocket = "/tmp/ubus.sock"
	c.Global.HotplugCall = "/bin/sh"
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Section+"."+e.Option)
	}
	if want := "global.control_socket global.ubus_socket global.hotplug_call"; strings.Join(got, " ") != want {
		t.Errorf("errors on %q, want %q", got, want)
	}
	t.Setenv(TrustedDirsEnv, "/etc:/bin:/tmp")
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("under %s: %v", TrustedDirsEnv, errs)
	}
}
