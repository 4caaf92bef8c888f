package openwrt

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/google/go-cmp/cmp"
)

func TestSyncSection(t *testing.T) {
	in := `config sync 'sync'
	option interface 'eth2'
	option peer '10.99.0.2'
	option port '7200'
	option key '49c5fd8b3fb2f4073d631bb776ff16dfeada120782cdfa8f000dc22be967a897'
	option bandwidth '256kbit'
	option window '500ms'
	option refresh '2m'
	option bulk_timeout '45'
	option demotion '50'
	list protocol 'tcp'
	list protocol 'udp'
	list include '192.168.1.0/24'
	list exclude '192.168.1.77'
	list zone '0'
	option mark '0x10/0xf0'
	option min_state 'assured'
	option lease_sync '1'
	option leasefile '/var/lib/misc/dnsmasq.leases'
`
	cfg, warns, errs := ParseConfig("f", []byte(in))
	if len(errs)+len(warns) > 0 {
		t.Fatalf("%v %v", errs, warns)
	}
	want := config.Sync{
		Enabled: true, Interface: "eth2", Peer: netip.MustParseAddr("10.99.0.2"), Port: 7200,
		Key:       "49c5fd8b3fb2f4073d631bb776ff16dfeada120782cdfa8f000dc22be967a897",
		Bandwidth: 32000, Window: 500 * time.Millisecond, Refresh: 2 * time.Minute, BulkTimeout: 45 * time.Second,
		Demotion: 50,
		Filter: config.SyncFilter{
			Protocols: []uint8{6, 17},
			Include:   []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
			Exclude:   []netip.Prefix{netip.MustParsePrefix("192.168.1.77/32")},
			Zones:     []uint16{0}, Mark: 0x10, MarkMask: 0xf0, MinTCPState: 3, AssuredOnly: true,
		},
		LeaseSync: true, LeaseFile: "/var/lib/misc/dnsmasq.leases",
	}
	if diff := cmp.Diff(want, cfg.Sync, cmpNet); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
}

func TestSyncSectionErrors(t *testing.T) {
	in := `config sync 'sync'
	option group '10.0.0.1'
	option bandwidth '5 furlongs'
	option window 'soon'
	list protocol 'gre'
	option mark 'red'
	option min_state 'happy'
	option port '70000'
	option leasefile 'dhcp.leases'
`
	_, _, errs := ParseConfig("f", []byte(in))
	var all []string
	for _, e := range errs {
		all = append(all, e.Error())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{
		"f:2: option 'group': 10.0.0.1 is not a multicast address",
		"f:3: option 'bandwidth'",
		"f:4: option 'window': must be a duration",
		"f:5: option 'protocol': must be tcp, udp",
		"f:6: option 'mark'",
		"f:7: option 'min_state'",
		"f:8: option 'port': must be an integer 1-65535",
		"f:9: option 'leasefile': must be a plain absolute path under /tmp/, /var/ or /run/",
		"f:1: option 'interface': is required",
		"f:1: option 'key': is required",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestLeaseFilePaths: carpd rewrites the lease file as root with what the
// peer sends, so it takes only a plain path where dnsmasq keeps leases.
func TestLeaseFilePaths(t *testing.T) {
	for p, ok := range map[string]bool{
		"/tmp/dhcp.leases": true, "/var/lib/misc/dnsmasq.leases": true, "/run/dnsmasq/leases": true,
		"/etc/shadow": false, "/tmp/../etc/shadow": false, "/tmp/./x": false, "/var/": false, "/tmp": false,
		"dhcp.leases": false, "/usr/lib/x": false, "//tmp/x": false,
	} {
		if got := leaseFileOK(p); got != ok {
			t.Errorf("%q: %v, want %v", p, got, ok)
		}
	}
}

func TestParseBandwidth(t *testing.T) {
	for in, want := range map[string]uint64{"256kbit": 32000, "1mbit": 125000, "8000": 1000, "2kbps": 2000, "1.5mbit": 187500} {
		if got, err := parseBandwidth(in); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "0", "-5kbit", "3parsecs"} {
		if _, err := parseBandwidth(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
