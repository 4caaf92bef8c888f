package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Balancing modes of a virtual host (`option balancing`), OpenBSD's names.
const (
	BalanceNone      = "none"       // failover only
	BalanceIP        = "ip"         // multicast cluster MAC, flooded by switches
	BalanceIPStealth = "ip-stealth" // unicast cluster MAC never used as a source
	BalanceIPUnicast = "ip-unicast" // unicast cluster MAC, learned normally
)

// MinNodes and MaxNodes bound `list node`: a balanced host has at least two
// nodes (one is `option vhid`), and the owned-node mask has 32 bits.
const (
	MinNodes = 2
	MaxNodes = 32
)

// Node is one CARP instance of a balanced virtual host (`list node
// 'vhid:advskew'`, OpenBSD's carpnodes): its own vhid, advskew, adverts and
// election.
type Node struct {
	VHID    uint8 `json:"vhid"`
	AdvSkew uint8 `json:"advskew"`
}

// ParseNode parses "vhid:advskew": vhid 1-255, advskew 0-254, decimal.
func ParseNode(s string) (Node, error) {
	v, sk, _ := strings.Cut(s, ":")
	vhid, err1 := strconv.ParseUint(v, 10, 8)
	skew, err2 := strconv.ParseUint(sk, 10, 8)
	if err1 != nil || err2 != nil || vhid == 0 || skew > 254 {
		return Node{}, fmt.Errorf("must be vhid:advskew (vhid 1-255, advskew 0-254), such as 1:0 or 2:100, not %q", s)
	}
	return Node{VHID: uint8(vhid), AdvSkew: uint8(skew)}, nil
}

// SetNodes sets the nodes of a balanced virtual host, sorted by vhid as
// OpenBSD sorts carpnodes (node i is bit i of the owned mask), and makes
// the first, the leader, the host's VHID and AdvSkew, so that Key and
// everything keyed by one vhid still name the host.
func (v *VHID) SetNodes(nodes []Node) {
	v.Nodes = append([]Node(nil), nodes...)
	for i := 1; i < len(v.Nodes); i++ { // insertion sort: at most 32
		for j := i; j > 0 && v.Nodes[j].VHID < v.Nodes[j-1].VHID; j-- {
			v.Nodes[j], v.Nodes[j-1] = v.Nodes[j-1], v.Nodes[j]
		}
	}
	if len(v.Nodes) > 0 {
		v.VHID, v.AdvSkew = v.Nodes[0].VHID, v.Nodes[0].AdvSkew
	}
}

// BalancingMode is the mode in effect: Balancing when set, otherwise ip for
// a host of several nodes (as on OpenBSD) and none for a single vhid.
func (v *VHID) BalancingMode() string {
	switch {
	case v.Balancing != "":
		return v.Balancing
	case len(v.Nodes) > 1:
		return BalanceIP
	}
	return BalanceNone
}

// ClusterMAC is the MAC that the virtual addresses of a balanced host
// resolve to, or nil when it does not balance: for ip the multicast
// 01:00:5e:00:01:<first vhid>, for ip-stealth and ip-unicast the unicast
// 00:00:5e:00:01:<first vhid> (the first vhid is the lowest).
func (v *VHID) ClusterMAC() net.HardwareAddr {
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, v.VHID}
	switch v.BalancingMode() {
	case BalanceIP:
		mac[0] = 0x01
	case BalanceIPStealth, BalanceIPUnicast:
	default:
		return nil
	}
	return mac
}

// validateBalancing checks `option balancing` and `list node` of every
// vhid section: a known mode, 2-32 nodes, a mode other than none for
// several nodes, and each node's vhid used once on its interface (by no
// other node of the section, no other section's vhid or nodes).
func (c *Config) validateBalancing(add func(sec, opt, format string, a ...any)) {
	for i := range c.VHIDs {
		v := &c.VHIDs[i]
		switch v.Balancing {
		case "", BalanceNone, BalanceIP, BalanceIPStealth, BalanceIPUnicast:
		default:
			add(v.Name, "balancing", "must be none, ip, ip-stealth or ip-unicast, not %q", v.Balancing)
		}
		if len(v.Nodes) == 0 {
			continue
		}
		if len(v.Nodes) < MinNodes || len(v.Nodes) > MaxNodes || v.Balancing == BalanceNone {
			add(v.Name, "node", "a balanced vhid has 2-32 nodes and a balancing mode other than none; this one has %d nodes, balancing %s (a single vhid is option vhid and advskew)", len(v.Nodes), v.BalancingMode())
		}
		for j, n := range v.Nodes {
			other := ""
			if j > 0 && v.Nodes[j-1].VHID == n.VHID {
				other = v.Name
			}
			for k := range c.VHIDs {
				w := &c.VHIDs[k]
				// Another balanced section's nodes: reported once, on the later.
				if k == i || w.Interface != v.Interface || len(w.Nodes) > 0 && k > i {
					continue
				}
				if len(w.Nodes) == 0 && w.VHID == n.VHID {
					other = w.Name
				}
				for _, m := range w.Nodes {
					if m.VHID == n.VHID {
						other = w.Name
					}
				}
			}
			if other != "" {
				add(v.Name, "node", "vhid %d is used more than once on %s (also by section %q)", n.VHID, v.Interface, other)
			}
		}
	}
}
