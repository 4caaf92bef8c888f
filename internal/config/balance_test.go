package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	good := map[string]Node{"1:0": {1, 0}, "2:100": {2, 100}, "255:254": {255, 254}, "07:010": {7, 10}, "0001:0": {1, 0}}
	for in, want := range good {
		if got, err := ParseNode(in); err != nil || got != want {
			t.Errorf("ParseNode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "1:", ":0", "0:0", "256:0", "1:255", "1:-1", "+1:0", "1:0:0", "a:b", " 1:0", "1: 0", "1:0x1", "1_0:0"} {
		if n, err := ParseNode(in); err == nil {
			t.Errorf("ParseNode(%q) = %v, want an error", in, n)
		}
	}
}

func TestSetNodesAndMAC(t *testing.T) {
	var v VHID
	v.SetNodes([]Node{{9, 100}, {3, 0}, {5, 50}})
	if v.VHID != 3 || v.AdvSkew != 0 || v.Nodes[1] != (Node{5, 50}) || v.Nodes[2] != (Node{9, 100}) {
		t.Fatalf("SetNodes: VHID %d advskew %d nodes %v", v.VHID, v.AdvSkew, v.Nodes)
	}
	tests := []struct {
		balancing string
		nodes     int
		mode, mac string
	}{
		{"", 3, "ip", "01:00:5e:00:01:03"}, // several nodes default to ip
		{"ip", 3, "ip", "01:00:5e:00:01:03"},
		{"ip-stealth", 3, "ip-stealth", "00:00:5e:00:01:03"},
		{"ip-unicast", 3, "ip-unicast", "00:00:5e:00:01:03"},
		{"", 0, "none", ""},
		{"none", 0, "none", ""},
		{"ip", 0, "ip", "01:00:5e:00:01:03"}, // one vhid may balance too, as on OpenBSD
	}
	for _, tt := range tests {
		w := VHID{VHID: 3, Balancing: tt.balancing, Nodes: v.Nodes[:tt.nodes]}
		var mac string
		if m := w.ClusterMAC(); m != nil {
			mac = m.String()
		}
		if got := w.BalancingMode(); got != tt.mode || mac != tt.mac {
			t.Errorf("balancing %q, %d nodes: mode %q MAC %q; want %q %q", tt.balancing, tt.nodes, got, mac, tt.mode, tt.mac)
		}
	}
}

func TestValidateBalancing(t *testing.T) {
	vhid := func(name, ifname string, id uint8, nodes ...Node) VHID {
		v := VHID{Name: name, Interface: ifname, VHID: id, AdvBase: 1,
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
		if len(nodes) > 0 {
			v.SetNodes(nodes)
		}
		return v
	}
	many := make([]Node, 33)
	for i := range many {
		many[i] = Node{VHID: uint8(i + 1)}
	}
	tests := []struct {
		name  string
		vhids []VHID
		want  []string // "section/option: substring"; none means valid
	}{
		{"two nodes", []VHID{vhid("lan", "br-lan", 0, Node{1, 0}, Node{2, 100})}, nil},
		{"beside an ordinary vhid", []VHID{vhid("lan", "br-lan", 0, Node{1, 0}, Node{2, 100}), vhid("wan", "br-lan", 3)}, nil},
		{"same vhids elsewhere", []VHID{vhid("lan", "br-lan", 0, Node{1, 0}, Node{2, 100}), vhid("wan", "eth1", 2)}, nil},
		{"one node", []VHID{vhid("lan", "br-lan", 0, Node{1, 0})}, []string{"lan/node: a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has 1 nodes, balancing none"}},
		{"33 nodes", []VHID{vhid("lan", "br-lan", 0, many...)}, []string{"lan/node: a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has 33 nodes"}},
		{"twice", []VHID{vhid("lan", "br-lan", 0, Node{4, 0}, Node{4, 100})}, []string{`lan/node: vhid 4 is used more than once on br-lan (also by section "lan")`}},
		{"none with nodes", []VHID{func() VHID { v := vhid("lan", "br-lan", 0, Node{1, 0}, Node{2, 0}); v.Balancing = "none"; return v }()},
			[]string{"lan/node: a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has 2 nodes, balancing none"}},
		{"unknown mode", []VHID{func() VHID { v := vhid("lan", "br-lan", 3); v.Balancing = "arp"; return v }()},
			[]string{`lan/balancing: must be none, ip, ip-stealth or ip-unicast, not "arp"`}},
		{"node taken by a vhid", []VHID{vhid("lan", "br-lan", 0, Node{1, 0}, Node{2, 100}), vhid("wan", "br-lan", 2)},
			[]string{`lan/node: vhid 2 is used more than once on br-lan (also by section "wan")`}},
		{"node taken by a node", []VHID{vhid("a", "br-lan", 0, Node{1, 0}, Node{5, 0}), vhid("b", "br-lan", 0, Node{5, 0}, Node{6, 0})},
			[]string{`b/node: vhid 5 is used more than once on br-lan (also by section "a")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.VHIDs = tt.vhids
			var got []string
			for _, e := range c.Validate() {
				got = append(got, e.Section+"/"+e.Option+": "+e.Msg)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate: %q, want %d errors like %q", got, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("no error %q in %q", w, got)
				}
			}
		})
	}
}
