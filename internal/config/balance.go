package config

import (
	"fmt"
	"net"
	"sort"
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
	bad := fmt.Errorf("must be vhid:advskew (vhid 1-255, advskew 0-254), such as 1:0 or 2:100, not %q", s)
	v, sk, ok := strings.Cut(s, ":")
	if !ok || !digits(v) || !digits(sk) {
		return Node{}, bad
	}
	vhid, err1 := strconv.Atoi(v)
	skew, err2 := strconv.Atoi(sk)
	if err1 != nil || err2 != nil || vhid < 1 || vhid > 255 || skew > 254 {
		return Node{}, bad
	}
	return Node{VHID: uint8(vhid), AdvSkew: uint8(skew)}, nil
}

func digits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckBalancing reports whether mode is a known balancing mode.
func CheckBalancing(mode string) error {
	switch mode {
	case BalanceNone, BalanceIP, BalanceIPStealth, BalanceIPUnicast:
		return nil
	}
	return fmt.Errorf("must be none, ip, ip-stealth or ip-unicast, not %q", mode)
}

// SetNodes sets the nodes of a balanced virtual host, sorted by vhid as
// OpenBSD sorts carpnodes (node i is bit i of the owned mask), and makes
// the first, the leader, the host's VHID and AdvSkew, so that Key and
// everything keyed by one vhid still name the host.
func (v *VHID) SetNodes(nodes []Node) {
	v.Nodes = append([]Node(nil), nodes...)
	sort.SliceStable(v.Nodes, func(i, j int) bool { return v.Nodes[i].VHID < v.Nodes[j].VHID })
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

// validateBalancing checks `list node` and `option balancing` of every
// vhid section: 2-32 nodes with distinct vhids, a mode for several nodes,
// and no node vhid used by another section on the same interface.
func (c *Config) validateBalancing(add func(sec, opt, format string, a ...any)) {
	used := map[string]string{} // interface/vhid -> section, for node vhids
	for i := range c.VHIDs {
		v := &c.VHIDs[i]
		if len(v.Nodes) == 0 {
			continue
		}
		if len(v.Nodes) < MinNodes || len(v.Nodes) > MaxNodes {
			add(v.Name, "node", "has %d nodes; a balanced vhid has %d-%d (a single one is option vhid and advskew)", len(v.Nodes), MinNodes, MaxNodes)
		}
		if v.Balancing == BalanceNone {
			add(v.Name, "balancing", "is none, but the section has %d nodes: use ip, ip-stealth or ip-unicast, or one vhid", len(v.Nodes))
		}
		for j, n := range v.Nodes {
			if j > 0 && v.Nodes[j-1].VHID == n.VHID {
				add(v.Name, "node", "vhid %d is listed twice", n.VHID)
			}
			if k := fmt.Sprintf("%s/%d", v.Interface, n.VHID); used[k] == "" {
				used[k] = v.Name
			}
		}
	}
	if len(used) == 0 {
		return
	}
	for i := range c.VHIDs {
		v := &c.VHIDs[i]
		nodes := v.Nodes
		if len(nodes) == 0 {
			nodes = []Node{{VHID: v.VHID}}
		}
		for _, n := range nodes {
			other, ok := used[fmt.Sprintf("%s/%d", v.Interface, n.VHID)]
			if ok && other != v.Name && n.VHID != 0 {
				opt := "node"
				if len(v.Nodes) == 0 {
					opt = "vhid"
				}
				add(v.Name, opt, "vhid %d on %s is also a node of section %q", n.VHID, v.Interface, other)
			}
		}
	}
}
