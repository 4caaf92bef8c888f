package openwrt

import (
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

func TestBalancedVHID(t *testing.T) {
	in := `config vhid 'lan'
	option interface 'br-lan'
	list node '2:100'
	list node '1:0'
	option balancing 'ip-stealth'
	option password 'secret'
	list address '192.168.1.1/24'
`
	cfg, warnings, errs := ParseConfig("/etc/config/carpd", []byte(in))
	if errs != nil {
		t.Fatal(errs)
	}
	v := cfg.VHIDs[0]
	if v.VHID != 1 || v.AdvSkew != 0 || len(v.Nodes) != 2 || v.Nodes[1] != (config.Node{VHID: 2, AdvSkew: 100}) {
		t.Fatalf("vhid %d advskew %d nodes %v", v.VHID, v.AdvSkew, v.Nodes)
	}
	if v.BalancingMode() != "ip-stealth" || v.ClusterMAC().String() != "00:00:5e:00:01:01" {
		t.Errorf("mode %q MAC %v", v.BalancingMode(), v.ClusterMAC())
	}
	if len(warnings) != 0 { // every node runs: no warning any more
		t.Errorf("warnings %q", warnings)
	}

	// Without option balancing, several nodes balance by ip.
	cfg, _, errs = ParseConfig("f", []byte(strings.Replace(in, "\toption balancing 'ip-stealth'\n", "", 1)))
	if errs != nil || cfg.VHIDs[0].BalancingMode() != "ip" || cfg.VHIDs[0].ClusterMAC().String() != "01:00:5e:00:01:01" {
		t.Fatalf("default mode: %v %v", cfg, errs)
	}
}

func TestBalancedVHIDErrors(t *testing.T) {
	head := "config vhid 'lan'\n\toption interface 'br-lan'\n\tlist address '192.168.1.1/24'\n\toption password 'secret'\n"
	tests := []struct {
		body string
		want []string
	}{
		{"\tlist node '1:0'\n\tlist node '2:300'\n", []string{`f:6: option 'node': must be vhid:advskew`}},
		{"\tlist node '1:0'\n\tlist node '1:5'\n", []string{`f:5: option 'node': vhid 1 is used more than once on br-lan (also by section "lan")`}},
		{"\tlist node '1:0'\n", []string{`f:5: option 'node': a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has 1 nodes`}},
		{"\tlist node '1:0'\n\tlist node '2:0'\n\toption balancing 'arp'\n", []string{`f:7: option 'balancing': must be none, ip, ip-stealth or ip-unicast, not "arp"`}},
		{"\tlist node '1:0'\n\tlist node '2:0'\n\toption balancing 'none'\n", []string{`f:5: option 'node': a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has 2 nodes, balancing none`}},
		{"\toption vhid '3'\n\tlist node '1:0'\n\tlist node '2:0'\n\toption advskew '7'\n", []string{
			`f:5: option 'vhid': list node replaces option vhid and advskew`,
			`f:8: option 'advskew': list node replaces option vhid and advskew`}},
		{"\tlist node '1:0'\n\tlist node '2:0'\n\nconfig vhid 'wan'\n\toption interface 'br-lan'\n\toption vhid '2'\n\tlist address '10.0.0.1/24'\n\toption password 'x'\n",
			[]string{`f:5: option 'node': vhid 2 is used more than once on br-lan (also by section "wan")`}},
	}
	for _, tt := range tests {
		_, _, errs := ParseConfig("f", []byte(head+tt.body))
		if len(errs) != len(tt.want) {
			t.Errorf("%q: errors %q, want %q", tt.body, errs, tt.want)
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(errs[i].Error(), w) {
				t.Errorf("%q: error %q, want %q...", tt.body, errs[i], w)
			}
		}
	}
}
