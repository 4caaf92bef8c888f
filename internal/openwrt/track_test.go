package openwrt

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carpd/carpd/internal/config"
)

const trackVhid = `config vhid 'lan'
	option interface 'br-lan'
	option vhid '1'
	option password 'secret'
	list address '192.168.1.1/24'
	list group 'wan'
`

func TestParseConfigTracks(t *testing.T) {
	in := trackVhid + `
config track 'wan_ping'
	option type 'ping'
	list target '198.51.100.1'
	list target '2001:db8::1'
	option device 'wan'
	option interval '0.2'
	option reliability '2'
	option down '5'
	option group 'wan'
	option weight '2'

config track 'pppoe'
	option type 'interface'
	option device 'wan'
	option interval '2'

config track 'vpn'
	option type 'script'
	option command '/usr/bin/check-vpn  --quick'
	option timeout '300ms'

config track 'vpn2'
	option type 'script'
	list command 'sh'
	list command '-c'
	list command 'ping -c1 -W1 10.8.0.1'

config track 'admin'
	option type 'file'
	option path '/tmp/carpd-demote'
	option up '1'

config track 'dns'
	option type 'process'
	option name 'dnsmasq'
`
	cfg, warnings, errs := ParseConfig("f", []byte(in))
	if len(errs) > 0 || len(warnings) > 0 {
		t.Fatalf("warnings %q, errors %v", warnings, errs)
	}
	if got := cfg.VHIDs[0].Groups; !cmp.Equal(got, []string{"wan"}) {
		t.Errorf("groups %q", got)
	}
	d := config.DefaultTrack
	want := []config.Track{
		func() config.Track {
			t := d("wan_ping")
			t.Type, t.Device, t.Interval, t.Timeout, t.Reliability, t.Down, t.Group, t.Weight =
				"ping", "wan", 200*time.Millisecond, 200*time.Millisecond, 2, 5, "wan", 2
			t.Targets = []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")}
			return t
		}(),
		func() config.Track {
			t := d("pppoe")
			t.Type, t.Device, t.Interval, t.Timeout = "interface", "wan", 2*time.Second, time.Second
			return t
		}(),
		func() config.Track {
			t := d("vpn")
			t.Type, t.Timeout, t.Command = "script", 300*time.Millisecond, []string{"/usr/bin/check-vpn", "--quick"}
			return t
		}(),
		func() config.Track {
			t := d("vpn2")
			t.Type, t.Timeout, t.Command = "script", time.Second, []string{"sh", "-c", "ping -c1 -W1 10.8.0.1"}
			return t
		}(),
		func() config.Track {
			t := d("admin")
			t.Type, t.Timeout, t.Path, t.Up = "file", time.Second, "/tmp/carpd-demote", 1
			return t
		}(),
		func() config.Track {
			t := d("dns")
			t.Type, t.Timeout, t.Process = "process", time.Second, "dnsmasq"
			return t
		}(),
	}
	if diff := cmp.Diff(want, cfg.Tracks, cmpNet); diff != "" {
		t.Errorf("tracks (-want +got):\n%s", diff)
	}
}

func TestParseConfigTrackErrors(t *testing.T) {
	head := trackVhid + "\nconfig track 'wp'\n" // the section at line 8
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"no type", head + "\tlist target 192.0.2.1\n", []string{`f:8: track 'wp': option type: is required: ping, interface, script, file or process`}},
		{"unknown type", head + "\toption type 'icmp'\n", []string{`f:9: track 'wp': option type: must be ping, interface, script, file or process, not "icmp"`}},
		{"ping without target", head + "\toption type ping\n", []string{`f:8: track 'wp': option target: a ping tracker needs at least one target`}},
		{"bad target", head + "\toption type ping\n\tlist target 192.0.2.1\n\tlist target 'gw'\n", []string{`f:11: track 'wp': option target: must be an IPv4 or IPv6 address, not "gw"`}},
		{"multicast target", head + "\toption type ping\n\tlist target 224.0.0.1\n", []string{`f:10: track 'wp': option target: 224.0.0.1 is not a unicast address`}},
		{"reliability above targets", head + "\toption type ping\n\tlist target 192.0.2.1\n\toption reliability 2\n", []string{`f:11: track 'wp': option reliability: is 2, but there are only 1 targets`}},
		{"script without command", head + "\toption type script\n", []string{`f:8: track 'wp': option command: a script tracker needs a command`}},
		{"file without path", head + "\toption type file\n", []string{`f:8: track 'wp': option path: a file tracker needs a path`}},
		{"relative path", head + "\toption type file\n\toption path demote\n", []string{`f:10: track 'wp': option path: must be an absolute path, not "demote"`}},
		{"process without name", head + "\toption type process\n", []string{`f:8: track 'wp': option name: a process tracker needs the process name`}},
		{"interface without device", head + "\toption type interface\n", []string{`f:8: track 'wp': option device: an interface tracker needs the device or OpenWrt network to follow`}},
		{"interval too short", head + "\toption type process\n\toption name x\n\toption interval 0.01\n", []string{`f:11: track 'wp': option interval: must be at least 50ms, not 10ms`}},
		{"interval not a number", head + "\toption type process\n\toption name x\n\toption interval fast\n", []string{`f:11: track 'wp': option interval: must be seconds such as 1, 0.2 or 1.5 (or a duration such as 200ms), not "fast"`}},
		{"negative timeout", head + "\toption type process\n\toption name x\n\toption timeout -1\n", []string{`f:11: track 'wp': option timeout: must be seconds such as 1, 0.2 or 1.5 (or a duration such as 200ms), not "-1"`}},
		{"zero timeout", head + "\toption type process\n\toption name x\n\toption timeout 0\n", []string{`f:11: track 'wp': option timeout: must be more than 0 and at most 3600 seconds, not "0"`}},
		{"timeout above interval x down", head + "\toption type script\n\toption command true\n\toption timeout 4\n", []string{`f:11: track 'wp': option timeout: 4s is longer than interval × down (3s): the tracker could not go down in down rounds`}},
		{"down 0", head + "\toption type process\n\toption name x\n\toption down 0\n", []string{`f:11: track 'wp': option down: must be an integer 1-1000, not "0"`}},
		{"weight 256", head + "\toption type process\n\toption name x\n\toption weight 256\n", []string{`f:11: track 'wp': option weight: must be an integer 1-255, not "256"`}},
		{"bad group", head + "\toption type process\n\toption name x\n\toption group 'wan uplink'\n", []string{`f:11: track 'wp': option group: "wan uplink" is not a group name: 1-15 of A-Z a-z 0-9 _ -`}},
		{"list as option", head + "\toption type process\n\tlist name x\n", []string{`f:10: track 'wp': option name: must be a single value: use option, not list`}},
		{"reserved name", trackVhid + "\nconfig track 'maintenance'\n\toption type process\n\toption name x\n", []string{`f:8: track 'maintenance': "maintenance" is the name of a built-in demotion source; call the tracker something else`}},
		{"anonymous", trackVhid + "\nconfig track\n\toption type process\n\toption name x\n", []string{`f:8: track: a track section needs a name: ` + "`config track 'NAME'`" + ` (the name is its demotion source)`}},
		{"vhid bad group", strings.Replace(trackVhid, "list group 'wan'", "list group 'a.b'", 1), []string{`f:6: option 'group': "a.b" is not a group name: 1-15 of A-Z a-z 0-9 _ -`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, errs := ParseConfig("f", []byte(c.in))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if cfg != nil || !cmp.Equal(got, c.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestParseConfigTrackWarnings(t *testing.T) {
	in := trackVhid + `
config track 'p'
	option type 'process'
	option name 'x'
	list target '192.0.2.1'
	option group 'lte'
	option colour 'red'
`
	_, warnings, errs := ParseConfig("f", []byte(in))
	want := []string{
		`f:11: track 'p': option target is not used by process trackers; ignored`,
		`f:12: track 'p': no vhid is in group lte (list group in a vhid section), so it demotes nothing`,
		`f:13: option "colour" is not known; ignored`,
	}
	if len(errs) > 0 || !cmp.Equal(warnings, want) {
		t.Errorf("errors %v, warnings:\n%s\nwant:\n%s", errs, strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"1": time.Second, "0.2": 200 * time.Millisecond, "1.5": 1500 * time.Millisecond,
		".5": 500 * time.Millisecond, "200ms": 200 * time.Millisecond, "3600": time.Hour} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1e3", "NaN", "inf", "3601", "1,5", "+1", "1 s", "0x10", "-5ms"} {
		if got, err := parseSeconds(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}

// TestRunProgram: the script runner trackers use finds bare names in the
// fixed PATH and kills a hung program at the context's end.
func TestRunProgram(t *testing.T) {
	out, err := RunProgram(context.Background(), []string{"sh", "-c", "echo $PATH; exit 0"})
	if err != nil || strings.TrimSpace(string(out)) != "/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := RunProgram(context.Background(), []string{"carpd-no-such-program"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing program: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := RunProgram(ctx, []string{"sleep", "30"}); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("hung program: %v after %v", err, time.Since(start))
	}
}

// TestShippedTrackExample: the commented-out tracker of the shipped
// /etc/config/carpd, uncommented, is a valid tracker.
func TestShippedTrackExample(t *testing.T) {
	data, err := os.ReadFile("../../package/carpd/files/carpd.config")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#config track") {
			in = true
		}
		if in && strings.HasPrefix(line, "#") {
			line = line[1:]
		}
		b.WriteString(line + "\n")
	}
	cfg, warnings, errs := ParseConfig("carpd.config", []byte(b.String()))
	if len(errs) > 0 || len(warnings) > 0 || len(cfg.Tracks) != 1 {
		t.Fatalf("warnings %q errors %v", warnings, errs)
	}
	if tr := cfg.Tracks[0]; tr.Name != "wan_ping" || tr.Type != "ping" || tr.Device != "wan" || len(tr.Targets) != 1 {
		t.Fatalf("tracker %+v", tr)
	}
}
