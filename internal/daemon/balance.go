package daemon

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/carpd/carpd/internal/balance"
	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
)

// Active-active balancing (docs/balancing.md). Every node of a balanced
// section runs as an ordinary vhost (its own vhid and advskew; the
// section's password, advbase, addresses and interface), keyed by its own
// vhid like any vhost. A balancer per section holds what the nodes share:
// the virtual addresses, which a per-prefix count of the master nodes
// adds and removes (sharedVIPs), and the Datapath with the owned mask,
// set on the loop on every node transition.

// BalanceStatus is the `balance` object of a balanced section's nodes in
// status: the same on every node of the section.
type BalanceStatus struct {
	Section string  `json:"section"`
	Mode    string  `json:"mode"`
	MAC     string  `json:"mac"`
	Nodes   []uint8 `json:"nodes"` // the nodes' vhids, bit i of Mask is Nodes[i]
	Mask    uint32  `json:"mask"`  // the owned mask: bit i while master of node i
	Owned   int     `json:"owned"` // nodes this router is master of
	// Error says why the Datapath is not installed.
	Error string `json:"error,omitempty"`
}

// Datapath is the kernel half of a balanced section: *balance.Datapath on Linux.
type Datapath interface {
	SetMask(mask uint32) error
	Close() error
}

type balancer struct {
	cfg    config.VHID // the section, as configured
	dev    string      // the device the Datapath is on; "" when none
	dp     Datapath    // nil while not installed
	err    error       // why dp is nil
	master []bool      // by node index
	vips   *sharedVIPs
}

// nodeConfigs returns the vhosts to run for cfg: a balanced section
// becomes one entry per node, the others stay as they are.
func nodeConfigs(cfg *config.Config) []config.VHID {
	out := make([]config.VHID, 0, len(cfg.VHIDs))
	for _, v := range cfg.VHIDs {
		if len(v.Nodes) < config.MinNodes {
			out = append(out, v)
			continue
		}
		for _, n := range v.Nodes {
			c := v
			c.VHID, c.AdvSkew = n.VHID, n.AdvSkew
			out = append(out, c)
		}
	}
	return out
}

// balanced reports whether a vhost is a node of a balanced section.
func balanced(v config.VHID) bool { return len(v.Nodes) >= config.MinNodes }

// section returns a node's section as configured: the leader's vhid and
// advskew, which Key and ClusterMAC read.
func section(v config.VHID) config.VHID {
	v.VHID, v.AdvSkew = v.Nodes[0].VHID, v.Nodes[0].AdvSkew
	return v
}

// sectionKey names a balanced section by interface and leader vhid.
func sectionKey(v config.VHID) string {
	l := section(v)
	return l.Key()
}

func sameSection(a, b config.VHID) bool {
	return a.Interface == b.Interface && a.BalancingMode() == b.BalancingMode() &&
		slices.Equal(a.Nodes, b.Nodes)
}

// balancerFor returns the balancer of a node's section, made on first use.
func (d *Daemon) balancerFor(v config.VHID) *balancer {
	if d.balancers == nil {
		d.balancers = map[string]*balancer{}
	}
	k, v := sectionKey(v), section(v)
	b := d.balancers[k]
	if b != nil && !sameSection(b.cfg, v) {
		b.close(d)
		b.cfg = v
		b.master = make([]bool, len(v.Nodes))
	}
	if b == nil {
		b = &balancer{cfg: v, master: make([]bool, len(v.Nodes)), vips: &sharedVIPs{held: map[netip.Prefix]uint64{}}}
		d.balancers[k] = b
	}
	b.cfg = v
	return b
}

// startBalance installs the section's Datapath on dev (once per section)
// and returns the address manager the node's vhost uses.
func (d *Daemon) startBalance(v config.VHID, dev string, ie *ifaceEntry) Addresses {
	b := d.balancerFor(v)
	b.vips.set(ie.vips, b.cfg.ClusterMAC())
	if b.dp != nil && b.dev != dev {
		b.close(d)
	}
	if b.dp == nil {
		dp, err := d.openDatapath(dev, b.cfg)
		b.dp, b.err, b.dev = dp, err, dev
		if err != nil {
			d.log.Error("cannot install the balancing Datapath", "iface", dev, "vhid", b.cfg.Nodes[0].VHID, "err", err)
		} else {
			d.log.Info("balancing Datapath installed", "iface", dev, "vhid", b.cfg.Nodes[0].VHID,
				"mode", b.cfg.BalancingMode(), "mac", b.cfg.ClusterMAC().String(), "nodes", len(b.cfg.Nodes))
			b.setMask(d)
		}
	}
	return &nodeVIPs{s: b.vips, bit: nodeBit(b.cfg, v.VHID)}
}

func (d *Daemon) openDatapath(dev string, v config.VHID) (Datapath, error) {
	if d.env.OpenDatapath != nil {
		return d.env.OpenDatapath(dev, v.Nodes[0].VHID, v.ClusterMAC(), len(v.Nodes))
	}
	return openDatapath(dev, v.Nodes[0].VHID, v.ClusterMAC(), len(v.Nodes))
}

func nodeBit(v config.VHID, vhid uint8) int {
	for i, n := range v.Nodes {
		if n.VHID == vhid {
			return i
		}
	}
	return -1
}

func (b *balancer) mask() uint32 { return balance.Mask(b.master) }

func (b *balancer) setMask(d *Daemon) {
	if b.dp == nil {
		return
	}
	if err := b.dp.SetMask(b.mask()); err != nil {
		d.log.Error("setting the balancing mask", "iface", b.dev, "err", err)
	}
}

func (b *balancer) close(d *Daemon) {
	if b.dp != nil {
		if err := b.dp.Close(); err != nil {
			d.log.Warn("removing the balancing Datapath", "iface", b.dev, "err", err)
		}
		d.log.Info("balancing Datapath removed", "iface", b.dev, "vhid", b.cfg.Nodes[0].VHID)
	}
	b.dp, b.dev, b.err = nil, "", nil
}

// balanceTransition sets the owned mask after a node's transition; on the
// loop, before anything else the transition causes.
func (d *Daemon) balanceTransition(t carp.Transition) {
	for _, b := range d.balancers {
		if b.dev != t.Interface {
			continue
		}
		i := nodeBit(b.cfg, t.VHID)
		if i < 0 {
			continue
		}
		m := t.To == carp.Master
		if b.master[i] != m {
			b.master[i] = m
			b.setMask(d)
		}
		return
	}
}

// applyBalancers removes the datapaths of sections that are gone; a
// changed section gets its new Datapath when its nodes start.
func (d *Daemon) applyBalancers(cfg *config.Config) {
	for k, b := range d.balancers {
		keep := false
		for _, v := range cfg.VHIDs {
			if balanced(v) && sectionKey(v) == k && sameSection(b.cfg, v) {
				keep = true
			}
		}
		if !keep {
			b.close(d)
			delete(d.balancers, k)
		}
	}
}

// closeBalancers removes every Datapath: the daemon stops.
func (d *Daemon) closeBalancers() {
	for k, b := range d.balancers {
		b.close(d)
		delete(d.balancers, k)
	}
}

func (d *Daemon) balanceStatus(v config.VHID) *BalanceStatus {
	if !balanced(v) {
		return nil
	}
	v = section(v)
	s := &BalanceStatus{Section: v.Name, Mode: v.BalancingMode(), MAC: v.ClusterMAC().String()}
	for _, n := range v.Nodes {
		s.Nodes = append(s.Nodes, n.VHID)
	}
	if b := d.balancers[sectionKey(v)]; b != nil {
		s.Mask = b.mask()
		for _, m := range b.master {
			if m {
				s.Owned++
			}
		}
		if b.err != nil {
			s.Error = b.err.Error()
		}
	}
	return s
}

// sharedVIPs are a balanced section's virtual addresses, shared by its
// node vhosts: a prefix is added when the first node holding it becomes
// master and removed when the last one leaves, so two nodes never add
// or remove an address under each other. Announcements carry the cluster
// MAC. The vhosts call it from their goroutines.
type sharedVIPs struct {
	mu   sync.Mutex
	a    Addresses
	mac  net.HardwareAddr
	held map[netip.Prefix]uint64 // prefix → the nodes (bits) that hold it
}

// clusterAnnouncer announces with another hardware address than the
// interface's; *vip.Linux is one.
type clusterAnnouncer interface {
	AnnounceAs(ctx context.Context, a []netip.Addr, hw net.HardwareAddr) error
}

func (s *sharedVIPs) set(a Addresses, mac net.HardwareAddr) {
	s.mu.Lock()
	s.a, s.mac = a, mac
	s.mu.Unlock()
}

// nodeVIPs is one node's view of the shared addresses: its Announcer.
type nodeVIPs struct {
	s   *sharedVIPs
	bit int
}

func (n *nodeVIPs) Add(ctx context.Context, ps []netip.Prefix) error {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var add []netip.Prefix
	for _, p := range ps {
		if s.held[p] == 0 {
			add = append(add, p)
		}
		s.held[p] |= 1 << uint(n.bit)
	}
	if len(add) == 0 {
		return nil
	}
	return s.a.Add(ctx, add)
}

func (n *nodeVIPs) Remove(ctx context.Context, ps []netip.Prefix) error {
	s := n.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var rm []netip.Prefix
	for _, p := range ps {
		h := s.held[p] &^ (1 << uint(n.bit))
		if h == 0 {
			delete(s.held, p)
			rm = append(rm, p) // idempotent: also clears one left by a crash
		} else {
			s.held[p] = h
		}
	}
	if len(rm) == 0 {
		return nil
	}
	return s.a.Remove(ctx, rm)
}

func (n *nodeVIPs) Announce(ctx context.Context, a []netip.Addr) error {
	s := n.s
	s.mu.Lock()
	addrs, mac := s.a, s.mac
	s.mu.Unlock()
	if ca, ok := addrs.(clusterAnnouncer); ok && mac != nil {
		return ca.AnnounceAs(ctx, a, mac)
	}
	return nil // never announce the interface's MAC for the cluster
}

// Close: the interface's address manager is closed with the interface.
func (n *nodeVIPs) Close() error { return nil }
