package openwrt

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/carpd/carpd/internal/config"
)

// cmpNet lets cmp compare netip values, which have unexported fields.
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func ptr[T any](v T) *T { return &v }

// exampleConfig is what testdata/example.conf (the example in the docs)
// must map to.
var exampleConfig = &config.Config{
	Sync: config.DefaultSync(),
	Global: config.Global{
		Preempt:        true,
		LogLevel:       "info",
		ControlSocket:  "/var/run/carpd.sock",
		UbusSocket:     config.DefaultUbusSocket,
		HotplugCall:    config.DefaultHotplugCall,
		HotplugTimeout: config.DefaultHotplugTimeout,
	},
	VHIDs: []config.VHID{{
		Name:      "lan",
		Interface: "br-lan",
		VHID:      1,
		AdvBase:   1,
		AdvSkew:   0,
		Password:  "secret",
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24"), netip.MustParsePrefix("fd00::1/64")},
		Peers:     []netip.Addr{netip.MustParseAddr("192.168.1.3")},
	}},
}

func TestLoadConfigExample(t *testing.T) {
	path := filepath.Join("testdata", "example.conf")
	cfg, warnings, errs := LoadConfig(path)
	if len(errs) > 0 || len(warnings) > 0 {
		t.Fatalf("LoadConfig(%s): warnings %q, errors %v", path, warnings, errs)
	}
	if diff := cmp.Diff(exampleConfig, cfg, cmpNet); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd")
	cfg, warnings, errs := LoadConfig(path)
	if cfg != nil || warnings != nil || len(errs) != 1 {
		t.Fatalf("LoadConfig = %v, %q, %v; want nil, nil and one error", cfg, warnings, errs)
	}
	if !errors.Is(errs[0], fs.ErrNotExist) || !strings.Contains(errs[0].Error(), path) {
		t.Errorf("error %q does not say that %s does not exist", errs[0], path)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     *config.Config
		warnings []string
	}{
		{
			name: "empty file gives the defaults",
			in:   "",
			want: config.Default(),
		},
		{
			name: "every global option",
			in: "config carpd 'global'\n\toption preempt 'yes'\n\toption log_level 'debug'\n" +
				"\toption control_socket '/tmp/run/carpd/c.sock'\n\toption demote_to_skew 'on'\n" +
				"\toption state_file '/var/run/carpd/state'\n\toption ubus_socket '/var/run/ubus/ubus.sock'\n" +
				"\toption hotplug_call '/etc/carpd/hooks/notify'\n\toption hotplug_timeout '5'\n",
			want: &config.Config{Sync: config.DefaultSync(), Global: config.Global{
				Preempt: true, LogLevel: "debug", ControlSocket: "/tmp/run/carpd/c.sock",
				DemoteToSkew: true, StateFile: "/var/run/carpd/state",
				UbusSocket: "/var/run/ubus/ubus.sock", HotplugCall: "/etc/carpd/hooks/notify", HotplugTimeout: 5 * time.Second,
			}},
		},
		{
			name: "anonymous carpd section",
			in:   "config carpd\n\toption log_level warn\n",
			want: &config.Config{Sync: config.DefaultSync(), Global: config.Global{LogLevel: "warn", ControlSocket: config.DefaultControlSocket, UbusSocket: config.DefaultUbusSocket, HotplugCall: config.DefaultHotplugCall, HotplugTimeout: config.DefaultHotplugTimeout}},
		},
		{
			name: "vhid defaults, bare addresses and option address",
			in: "config vhid\n\toption interface eth0\n\toption vhid 255\n\toption address 10.0.0.1\n" +
				"config vhid 'v6'\n\toption interface eth1\n\toption vhid 2\n\tlist address fd00::1\n\toption preempt 0\n\toption advbase 0\n\toption advskew 254\n",
			want: &config.Config{
				Sync:   config.DefaultSync(),
				Global: config.Default().Global,
				VHIDs: []config.VHID{
					{
						Name: "cfg018c90", Interface: "eth0", VHID: 255, AdvBase: 1,
						Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
					},
					{
						Name: "v6", Interface: "eth1", VHID: 2, AdvBase: 0, AdvSkew: 254,
						Addresses: []netip.Prefix{netip.MustParsePrefix("fd00::1/128")},
						Preempt:   ptr(false),
					},
				},
			},
			warnings: []string{
				`f:1: vhid section "cfg018c90" has no password: adverts use the all-zero key, so anyone on eth0 can take its addresses over`,
				`f:5: vhid section "v6" has no password: adverts use the all-zero key, so anyone on eth1 can take its addresses over`,
			},
		},
		{
			name: "disabled section is skipped with its bad values",
			in: "config vhid 'off'\n\toption enabled 'disabled'\n\toption vhid 'nonsense'\n\toption typo 1\n" +
				"config vhid 'on'\n\toption enabled 1\n\toption interface eth0\n\toption vhid 3\n\tlist address 10.0.0.3/8\n\toption preempt true\n",
			want: &config.Config{
				Sync:   config.DefaultSync(),
				Global: config.Default().Global,
				VHIDs: []config.VHID{{
					Name: "on", Interface: "eth0", VHID: 3, AdvBase: 1,
					Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/8")},
					Preempt:   ptr(true),
				}},
			},
			warnings: []string{`f:5: vhid section "on" has no password: adverts use the all-zero key, so anyone on eth0 can take its addresses over`},
		},
		{
			name: "unknown options and sections warn; a disabled sync section is not checked",
			in: "config carpd 'global'\n\toption loglevel debug\n" +
				"config sync 'sync'\n\toption enabled 0\n\toption interface eth9\n" +
				"config vip 'x'\n\toption address 1.2.3.4\n" +
				"config vhid 'lan'\n\toption interface eth0\n\toption vhid 1\n\tlist address 10.0.0.1\n\toption advksew 10\n\tlist adress 10.0.0.2\n",
			want: &config.Config{
				Sync:   func() config.Sync { s := config.DefaultSync(); s.Interface = "eth9"; return s }(),
				Global: config.Default().Global,
				VHIDs: []config.VHID{{
					Name: "lan", Interface: "eth0", VHID: 1, AdvBase: 1,
					Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
				}},
			},
			warnings: []string{
				`f:2: option "loglevel" is not known; ignored`,
				`f:6: section type "vip" is not known to this version; ignored`,
				`f:8: vhid section "lan" has no password: adverts use the all-zero key, so anyone on eth0 can take its addresses over`,
				`f:12: option "advksew" is not known; ignored`,
				`f:13: option "adress" is not known; ignored`,
			},
		},
		{
			name: "a reopened section keeps warnings in line order",
			in: "config vhid 'lan'\n\toption foo 1\nconfig carpd 'global'\n\toption bar 1\n" +
				"config vhid 'lan'\n\toption baz 1\n\toption interface eth0\n\toption vhid 1\n\tlist address 10.0.0.1\n",
			want: &config.Config{
				Sync:   config.DefaultSync(),
				Global: config.Default().Global,
				VHIDs: []config.VHID{{
					Name: "lan", Interface: "eth0", VHID: 1, AdvBase: 1,
					Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
				}},
			},
			warnings: []string{
				`f:1: vhid section "lan" has no password: adverts use the all-zero key, so anyone on eth0 can take its addresses over`,
				`f:2: option "foo" is not known; ignored`,
				`f:4: option "bar" is not known; ignored`,
				`f:6: option "baz" is not known; ignored`,
			},
		},
		{
			name: "two carpd sections with one name are one section",
			in:   "config carpd 'global'\n\toption preempt 1\nconfig carpd 'global'\n\toption log_level error\n",
			want: &config.Config{Sync: config.DefaultSync(), Global: config.Global{Preempt: true, LogLevel: "error", ControlSocket: config.DefaultControlSocket, UbusSocket: config.DefaultUbusSocket, HotplugCall: config.DefaultHotplugCall, HotplugTimeout: config.DefaultHotplugTimeout}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings, errs := ParseConfig("f", []byte(tt.in))
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if diff := cmp.Diff(tt.want, cfg, cmpNet); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConfigBooleans(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"1", true}, {"yes", true}, {"on", true}, {"true", true}, {"enabled", true},
		{"0", false}, {"no", false}, {"off", false}, {"false", false}, {"disabled", false},
	} {
		in := "config carpd 'global'\n\toption preempt '" + tt.in + "'\n\toption demote_to_skew '" + tt.in + "'\n"
		cfg, _, errs := ParseConfig("f", []byte(in))
		if len(errs) > 0 {
			t.Errorf("%q: %v", tt.in, errs)
			continue
		}
		if cfg.Global.Preempt != tt.want || cfg.Global.DemoteToSkew != tt.want {
			t.Errorf("%q: preempt %v, demote_to_skew %v, want %v", tt.in, cfg.Global.Preempt, cfg.Global.DemoteToSkew, tt.want)
		}
	}
}

// vhidHead is a valid vhid section of 4 lines; a test appends line 5 on.
const vhidHead = "config vhid 'lan'\n\toption interface 'br-lan'\n\toption vhid '1'\n\tlist address '10.0.0.1/24'\n"

func TestParseConfigErrors(t *testing.T) {
	const tooLong = "01234567890123456789" // 20 bytes
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// Values that do not parse, one option each.
		{"advskew too big", vhidHead + "\toption advskew '300'\n", []string{`f:5: option 'advskew': must be an integer 0-254, not "300"`}},
		{"advskew 255", vhidHead + "\toption advskew 255\n", []string{`f:5: option 'advskew': must be an integer 0-254, not "255"`}},
		{"advskew negative", vhidHead + "\toption advskew -1\n", []string{`f:5: option 'advskew': must be an integer 0-254, not "-1"`}},
		{"advskew with sign", vhidHead + "\toption advskew +1\n", []string{`f:5: option 'advskew': must be an integer 0-254, not "+1"`}},
		{"advskew with space", vhidHead + "\toption advskew ' 1'\n", []string{`f:5: option 'advskew': must be an integer 0-254, not " 1"`}},
		{"advbase too big", vhidHead + "\toption advbase 256\n", []string{`f:5: option 'advbase': must be an integer 0-255, not "256"`}},
		{"advbase not a number", vhidHead + "\toption advbase 1s\n", []string{`f:5: option 'advbase': must be an integer 0-255, not "1s"`}},
		{"advbase huge", vhidHead + "\toption advbase 99999999999999999999999\n", []string{`f:5: option 'advbase': must be an integer 0-255, not "99999999999999999999999"`}},
		{
			"vhid 0 is reported once",
			"config vhid 'lan'\n\toption interface eth0\n\tlist address 10.0.0.1\n\toption vhid 0\n",
			[]string{`f:4: option 'vhid': must be an integer 1-255, not "0"`},
		},
		{
			"vhid 256",
			"config vhid 'lan'\n\toption interface eth0\n\tlist address 10.0.0.1\n\toption vhid 256\n",
			[]string{`f:4: option 'vhid': must be an integer 1-255, not "256"`},
		},
		{"preempt not a bool", vhidHead + "\toption preempt maybe\n", []string{`f:5: option 'preempt': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "maybe"`}},
		{"bools are case-sensitive", vhidHead + "\toption preempt Yes\n", []string{`f:5: option 'preempt': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "Yes"`}},
		{"enabled not a bool", vhidHead + "\toption enabled 2\n", []string{`f:5: option 'enabled': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "2"`}},
		{"global preempt not a bool", "config carpd 'global'\n\toption preempt 'sure'\n", []string{`f:2: option 'preempt': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "sure"`}},
		{"demote_to_skew not a bool", "config carpd 'global'\n\n\toption demote_to_skew 'x'\n", []string{`f:3: option 'demote_to_skew': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "x"`}},
		{"scalar given as a list", "config carpd 'global'\n\tlist log_level info\n", []string{`f:2: option 'log_level': must be a single value: use option, not list`}},
		{"interface given as a list", vhidHead + "\tlist interface eth1\n", []string{`f:2: option 'interface': must be a single value: use option, not list`}},
		{
			"bad address is reported at its own line",
			vhidHead + "\tlist address '10.0.0.2/24'\n\tlist address '10.0.0.300'\n",
			[]string{`f:6: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not "10.0.0.300"`},
		},
		{"prefix too long", vhidHead + "\tlist address '10.0.0.1/33'\n", []string{`f:5: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not "10.0.0.1/33"`}},
		{"address with zone", vhidHead + "\tlist address 'fe80::1%br-lan'\n", []string{`f:5: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not "fe80::1%br-lan"`}},
		{"empty address item", vhidHead + "\tlist address ''\n", []string{`f:5: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not ""`}},
		{"multicast address", vhidHead + "\tlist address '224.0.0.18/32'\n", []string{`f:5: option 'address': 224.0.0.18 is not a unicast address`}},
		{"unspecified address", vhidHead + "\tlist address '::'\n", []string{`f:5: option 'address': :: is not a unicast address`}},
		{
			"all addresses bad is not also 'at least one required'",
			"config vhid 'lan'\n\toption interface eth0\n\toption vhid 1\n\toption address 'nope'\n",
			[]string{`f:4: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not "nope"`},
		},
		{"bad peer", vhidHead + "\tlist peer '192.168.1.3'\n\tlist peer 'host.lan'\n", []string{`f:6: option 'peer': must be an IP address, not "host.lan"`}},
		{"peer prefix", vhidHead + "\toption peer '192.168.1.3/24'\n", []string{`f:5: option 'peer': must be an IP address, not "192.168.1.3/24"`}},

		// Rules of config.Validate, with the line of the option or section.
		{
			"password too long says why",
			vhidHead + "\toption password '" + tooLong + "'\n",
			[]string{`f:5: option 'password': is 20 bytes; CARP keys hold at most 19 (the BSDs would silently use only the first 19 bytes, ucarp refuses it)`},
		},
		{"multicast peer", vhidHead + "\tlist peer '10.0.0.9'\n\tlist peer '224.0.0.18'\n", []string{`f:6: option 'peer': 224.0.0.18 is not a unicast address`}},
		{"unspecified peer", vhidHead + "\toption peer '::'\n", []string{`f:5: option 'peer': :: is not a unicast address`}},
		{"log_level", "config carpd 'global'\n\toption log_level 'verbose'\n", []string{`f:2: option 'log_level': must be debug, info, warn or error, not "verbose"`}},
		{
			"missing options are reported at the section line",
			"# carpd\n\nconfig vhid 'lan'\n\toption advbase 0\n",
			[]string{
				`f:3: option 'interface': is required`,
				`f:3: option 'vhid': is required and must be 1-255`,
				`f:3: option 'advskew': advbase 0 needs a non-zero advskew (the interval is advskew/256 s)`,
				`f:3: option 'address': at least one virtual address is required`,
			},
		},
		{"advbase 0 with advskew 0", vhidHead + "\toption advbase 0\n\toption advskew 0\n", []string{`f:6: option 'advskew': advbase 0 needs a non-zero advskew (the interval is advskew/256 s)`}},
		{
			"vhid used twice on one interface",
			vhidHead + "config vhid 'lan2'\n\toption interface 'br-lan'\n\tlist address '10.0.0.2'\n\toption vhid 1\n",
			[]string{`f:8: option 'vhid': vhid 1 on br-lan is already used by section "lan"`},
		},
		{
			"vhid section named global",
			"config carpd 'main'\n\toption log_level loud\nconfig vhid 'global'\n\toption vhid 1\n\tlist address 10.0.0.1\n",
			[]string{`f:2: option 'log_level': must be debug, info, warn or error, not "loud"`, `f:3: option 'interface': is required`},
		},

		// Section-level problems.
		{
			"second carpd section",
			"config carpd\n\toption preempt 1\n\nconfig carpd\n\toption preempt 0\n",
			[]string{`f:4: only one carpd section is allowed; the first is at line 1`},
		},

		// Several problems: all of them, in line order.
		{
			"every error is reported",
			"config carpd 'global'\n" + // 1
				"\toption preempt 'perhaps'\n" + // 2
				"\toption log_level 'loud'\n" + // 3
				"config vhid 'lan'\n" + // 4
				"\toption interface 'br-lan'\n" + // 5
				"\toption vhid '1'\n" + // 6
				"\toption advskew '300'\n" + // 7
				"\toption password '" + tooLong + "'\n" + // 8
				"\tlist address '10.0.0.1/24'\n" + // 9
				"\tlist address 'bogus'\n" + // 10
				"config vhid 'wan'\n" + // 11
				"\toption interface 'eth1'\n" + // 12
				"\toption vhid 'one'\n" + // 13
				"\tlist peer '1.2.3'\n", // 14
			[]string{
				`f:2: option 'preempt': must be a boolean (1/yes/on/true/enabled or 0/no/off/false/disabled), not "perhaps"`,
				`f:3: option 'log_level': must be debug, info, warn or error, not "loud"`,
				`f:7: option 'advskew': must be an integer 0-254, not "300"`,
				`f:8: option 'password': is 20 bytes; CARP keys hold at most 19 (the BSDs would silently use only the first 19 bytes, ucarp refuses it)`,
				`f:10: option 'address': must be an IP address or prefix such as 192.168.1.1/24 or fd00::1/64, not "bogus"`,
				`f:11: option 'address': at least one virtual address is required`,
				`f:13: option 'vhid': must be an integer 1-255, not "one"`,
				`f:14: option 'peer': must be an IP address, not "1.2.3"`,
			},
		},

		// A syntax error is the only error.
		{"syntax error", vhidHead + "\toption advskew '300\n", []string{`f:5: unterminated ' quote (end of file reached)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, errs := ParseConfig("f", []byte(tt.in))
			if cfg != nil {
				t.Errorf("ParseConfig returned a config with errors")
			}
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigErrorFields(t *testing.T) {
	_, _, errs := ParseConfig("/etc/config/carpd", []byte(vhidHead+"\toption advskew 300\n"))
	if len(errs) != 1 {
		t.Fatalf("got %v, want one error", errs)
	}
	var ce *ConfigError
	if !errors.As(errs[0], &ce) {
		t.Fatalf("error %T is not a *ConfigError", errs[0])
	}
	want := &ConfigError{File: "/etc/config/carpd", Line: 5, Section: "lan", Option: "advskew", Msg: `must be an integer 0-254, not "300"`}
	if diff := cmp.Diff(want, ce); diff != "" {
		t.Errorf("ConfigError mismatch (-want +got):\n%s", diff)
	}

	_, _, errs = ParseConfig("f", []byte("config vhid\n"))
	if !errors.As(errs[0], &ce) || ce.Section != "cfg018c90" || ce.Line != 1 {
		t.Errorf("error for an anonymous section: %+v, want section cfg018c90 at line 1", errs[0])
	}
}

func TestConfigErrorString(t *testing.T) {
	for _, tt := range []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{File: "f", Line: 3, Option: "vhid", Msg: "bad"}, "f:3: option 'vhid': bad"},
		{ConfigError{File: "f", Line: 3, Msg: "bad"}, "f:3: bad"},
		{ConfigError{File: "f", Option: "vhid", Msg: "bad"}, "f: option 'vhid': bad"},
		{ConfigError{File: "f", Msg: "bad"}, "f: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestParseConfigSyntaxError(t *testing.T) {
	cfg, warnings, errs := ParseConfig("f", []byte("config vhid 'lan'\nbogus\n"))
	var pe *ParseError
	if cfg != nil || warnings != nil || len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Line != 2 {
		t.Errorf("ParseConfig = %v, %q, %v; want nil, nil and one *ParseError at line 2", cfg, warnings, errs)
	}
}

// TestDocExample keeps the example in the package documentation honest: the
// code block under "# carpd sections" in doc.go must map without warnings.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "// # carpd sections\n")
	if !ok {
		t.Fatal("doc.go has no \"# carpd sections\" heading")
	}
	var b strings.Builder
	for _, line := range strings.Split(block, "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			b.WriteString(rest + "\n")
		} else if line == "//" {
			b.WriteString("\n")
		} else {
			break // end of the code block
		}
	}
	in := b.String()
	if !strings.Contains(in, "config vhid") {
		t.Fatalf("example not found in doc.go, got %q", in)
	}
	cfg, warnings, errs := ParseConfig("doc", []byte(in))
	if len(errs) > 0 || len(warnings) > 0 {
		t.Fatalf("warnings %q, errors %v", warnings, errs)
	}
	want := &config.Config{
		Sync:   config.DefaultSync(),
		Global: exampleConfig.Global,
		VHIDs: []config.VHID{{
			Name: "lan", Interface: "br-lan", VHID: 1, AdvBase: 1, Password: "secret",
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.1/24")},
			Peers:     []netip.Addr{netip.MustParseAddr("192.168.1.3")},
			Preempt:   ptr(true),
		}},
	}
	if diff := cmp.Diff(want, cfg, cmpNet); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

// TestParseConfigHotplugCall: hotplug_call set to the empty string turns the hooks off
// (HotplugCall ""), which libuci's reading would otherwise turn into "absent",
// that is the default hotplug-call.
func TestParseConfigHotplugCall(t *testing.T) {
	const g = "config carpd 'global'\n"
	for _, tt := range []struct{ in, want string }{
		{g, config.DefaultHotplugCall},
		{g + "\toption hotplug_call ''\n", ""},
		{g + "\toption hotplug_call \"\"\n", ""},
		{g + "\toption hotplug_call '/sbin/hotplug-call'\n", "/sbin/hotplug-call"},
		// 'none' survives a `uci commit`, which drops ''.
		{g + "\toption hotplug_call 'none'\n", ""},
		// A later value wins over the empty one...
		{g + "\toption hotplug_call ''\n\toption hotplug_call '/etc/carpd/hooks/x'\n", "/etc/carpd/hooks/x"},
		// ...and an empty one after a value is a no-op, as in libuci.
		{g + "\toption hotplug_call '/etc/carpd/hooks/x'\n\toption hotplug_call ''\n", "/etc/carpd/hooks/x"},
		// Only the carpd section's own option counts.
		{g + "config vhid 'lan'\n\toption enabled 0\n\toption hotplug_call ''\n", config.DefaultHotplugCall},
	} {
		cfg, _, errs := ParseConfig("f", []byte(tt.in))
		if len(errs) > 0 {
			t.Errorf("%q: %v", tt.in, errs)
			continue
		}
		if cfg.Global.HotplugCall != tt.want {
			t.Errorf("%q: HotplugCall %q, want %q", tt.in, cfg.Global.HotplugCall, tt.want)
		}
	}
}

// TestParseConfigPaths: a path option that would let a writer of the file
// make carpd (root) overwrite, remove or run a file that is not carpd's is
// an error at the option's line; CARPD_TRUSTED_DIRS (set by whoever starts
// carpd) adds directories.
func TestParseConfigPaths(t *testing.T) {
	t.Setenv(config.TrustedDirsEnv, "")
	conf := func(opt, val string) string {
		return "config carpd 'global'\n\toption log_level 'info'\n\toption " + opt + " '" + val + "'\n"
	}
	for _, tt := range []struct {
		opt, val string
		ok       bool
	}{
		{"control_socket", "/var/run/carpd.sock", true},
		{"control_socket", "/tmp/run/carpd-2.sock", true},
		{"control_socket", "/var/run/carpd/ctl", true},
		{"control_socket", "/etc/shadow", false},
		{"control_socket", "/var/run/ubus/ubus.sock", false},
		{"control_socket", "/var/run/ubus.sock", false},
		{"control_socket", "/var/run/carpd/../ubus.sock", false},
		{"control_socket", "/var/run//carpd.sock", false},
		{"control_socket", "carpd.sock", false},
		{"control_socket", "/tmp/carpd.sock", false},
		{"state_file", "/var/run/carpd/state", true},
		{"state_file", "/var/lib/carpd/state", false},
		{"state_file", "/var/run/carpd.state", true},
		{"state_file", "/etc/config/carpd", false},
		{"state_file", "/etc/init.d/carpd", false},
		{"state_file", "/var/run/carpd/", false},
		{"ubus_socket", "/var/run/ubus/ubus.sock", true},
		{"ubus_socket", "/var/run/ubus.sock", true},
		{"ubus_socket", "/tmp/ubus.sock", false},
		{"hotplug_call", "/sbin/hotplug-call", true},
		{"hotplug_call", "/etc/carpd/hooks/notify", true},
		{"hotplug_call", "/usr/libexec/carpd/hook", true},
		{"hotplug_call", "/bin/sh", false},
		{"hotplug_call", "/tmp/x", false},
		{"hotplug_call", "/etc/carpd/hooks/../../../tmp/x", false},
		{"hotplug_call", "sh", false},
	} {
		cfg, _, errs := ParseConfig("f", []byte(conf(tt.opt, tt.val)))
		if tt.ok {
			if len(errs) > 0 {
				t.Errorf("%s %q: %v", tt.opt, tt.val, errs)
			}
			continue
		}
		if cfg != nil || len(errs) != 1 {
			t.Errorf("%s %q: accepted (errors %v)", tt.opt, tt.val, errs)
			continue
		}
		var ce *ConfigError
		if !errors.As(errs[0], &ce) || ce.Line != 3 || ce.Option != tt.opt || ce.Section != "global" ||
			!strings.HasPrefix(ce.Error(), "f:3: ") {
			t.Errorf("%s %q: error %q (%+v), want it at f:3 on the option", tt.opt, tt.val, errs[0], ce)
		}
	}

	// The default control socket and its state file are carpd's own.
	if _, _, errs := ParseConfig("f", []byte("config carpd 'global'\n")); len(errs) > 0 {
		t.Errorf("defaults: %v", errs)
	}

	dir := t.TempDir()
	t.Setenv(config.TrustedDirsEnv, "relative:"+dir)
	for _, opt := range []string{"control_socket", "state_file", "ubus_socket", "hotplug_call"} {
		if _, _, errs := ParseConfig("f", []byte(conf(opt, filepath.Join(dir, "x")))); len(errs) > 0 {
			t.Errorf("%s under %s=%s: %v", opt, config.TrustedDirsEnv, dir, errs)
		}
		if _, _, errs := ParseConfig("f", []byte(conf(opt, "/etc/x"))); len(errs) != 1 {
			t.Errorf("%s /etc/x with %s=%s: errors %v, want one", opt, config.TrustedDirsEnv, dir, errs)
		}
		// A relative directory in the variable is ignored, not resolved.
		if _, _, errs := ParseConfig("f", []byte(conf(opt, "/relative/x"))); len(errs) != 1 {
			t.Errorf("%s /relative/x: errors %v, want one", opt, errs)
		}
	}
}

// TestParseConfigPasswordWarnings: a vhid with no password or with the
// example one of the package's /etc/config/carpd is a warning (the BSDs and
// ucarp allow both), at the section or the password's line.
func TestParseConfigPasswordWarnings(t *testing.T) {
	in := "config vhid 'a'\n\toption interface eth0\n\toption vhid 1\n\tlist address 10.0.0.1\n" +
		"config vhid 'b'\n\toption interface eth0\n\toption vhid 2\n\tlist address 10.0.0.2\n\toption password 'change-me'\n" +
		"config vhid 'c'\n\toption interface eth0\n\toption vhid 3\n\tlist address 10.0.0.3\n\toption password 'x7#kq9'\n" +
		"config vhid 'd'\n\toption enabled 0\n\toption password 'change-me'\n"
	cfg, warnings, errs := ParseConfig("f", []byte(in))
	if cfg == nil || len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []string{
		`f:1: vhid section "a" has no password: adverts use the all-zero key, so anyone on eth0 can take its addresses over`,
		`f:9: vhid section "b" uses the example password "change-me": set a secret one on every router of the group`,
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// The example is what the package ships.
	b, err := os.ReadFile("../../package/carpd/files/carpd.config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "option password '"+ExamplePassword+"'") {
		t.Errorf("package/carpd/files/carpd.config has no `option password '%s'`", ExamplePassword)
	}
}

// TestLoadConfigHookProgram: LoadConfig refuses a hook program that someone
// other than root could change, at the hotplug_call line.
func TestLoadConfigHookProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the hook must be owned by root to be accepted")
	}
	dir := t.TempDir()
	t.Setenv(config.TrustedDirsEnv, dir)
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "carpd")
	if err := os.WriteFile(conf, []byte("config carpd 'main'\n\toption log_level info\n\toption hotplug_call '"+hook+"'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, _, errs := LoadConfig(conf); cfg == nil || len(errs) > 0 {
		t.Fatalf("a root-owned 0755 hook: %v", errs)
	}
	if err := os.Chmod(hook, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg, _, errs := LoadConfig(conf)
	var ce *ConfigError
	if cfg != nil || len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Line != 3 || ce.Option != "hotplug_call" || ce.Section != "main" {
		t.Fatalf("a world-writable hook: cfg %v, errors %v", cfg != nil, errs)
	}
	if !strings.Contains(ce.Error(), "written by others") {
		t.Errorf("error %q does not say why", ce)
	}
}
