package lab

import (
	"context"
	"fmt"
	"net/netip"
)

// bridgeName is the bridge inside every switch namespace.
const bridgeName = "br0"

// A Switch is an L2 segment: a bridge in a namespace of its own, so that
// nothing of it is visible to the hosts but their veth ends.
type Switch struct {
	Name   string // name given to Lab.Switch
	NS     string // namespace name; `ip netns exec NS tcpdump -i br0` watches the segment
	Bridge string // bridge interface inside NS: "br0"

	lab *Lab
}

// switchSysctls keep the segment quiet: with IPv6 off in the switch
// namespace, neither the bridge nor its ports send router solicitations, MLD
// reports or DAD probes of their own. Bridged IPv6 is unaffected.
var switchSysctls = [][2]string{
	{"net.ipv6.conf.all.disable_ipv6", "1"},
	{"net.ipv6.conf.default.disable_ipv6", "1"},
}

// Switch creates an L2 segment called name (unique among the lab's hosts and
// switches): a bridge that forwards at once and floods multicast to every
// port, like a dumb switch. STP is off, the forward delay is 0, multicast
// snooping is off (CARP and VRRP advertisements are multicast) and bridge
// netfilter is off.
func (l *Lab) Switch(name string) (*Switch, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.ops.Done()
	ns, err := l.newNS(name)
	if err != nil {
		return nil, err
	}
	sw := &Switch{Name: name, NS: ns, Bridge: bridgeName, lab: l}
	h := &Host{Name: name, NS: ns, lab: l}
	if err := h.sysctls(switchSysctls); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, err := ipIn(ctx, ns, "link", "add", "name", bridgeName, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0",
		"nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0"); err != nil {
		return nil, err
	}
	if _, err := ipIn(ctx, ns, "link", "set", "dev", bridgeName, "up"); err != nil {
		return nil, err
	}
	return sw, nil
}

// String returns the switch's name.
func (sw *Switch) String() string { return sw.Name }

// A Link is a veth pair from a host into a switch.
type Link struct {
	Host   *Host
	Switch *Switch
	Name   string // the host's end, inside Host.NS
	Port   string // the bridge's end, inside Switch.NS
}

// Attach plugs h into sw: it creates a veth pair with one end in h called
// ifname (at most 15 bytes) and the other end enslaved to sw's bridge, sets
// both up and adds addrs (CIDR strings, "10.0.0.2/24", "fd00::2/64") to
// h's end, IPv6 ones with nodad, IPv4 ones with the subnet broadcast.
func (l *Lab) Attach(h *Host, sw *Switch, ifname string, addrs ...string) (*Link, error) {
	if h.lab != l || sw.lab != l {
		return nil, fmt.Errorf("lab: attach %s to %s: not from this lab", h, sw)
	}
	if !ifnameRE.MatchString(ifname) {
		return nil, fmt.Errorf("lab: bad interface name %q: want 1-15 of [A-Za-z0-9_.-]", ifname)
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("lab: attach %s: %w", h, err)
		}
		prefixes = append(prefixes, p)
	}
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.ops.Done()
	l.mu.Lock()
	l.links++
	port := fmt.Sprintf("v%d-%s", l.links, h.Name)
	l.mu.Unlock()
	if len(port) > 15 {
		port = port[:15]
	}
	k := &Link{Host: h, Switch: sw, Name: ifname, Port: port}

	ctx := context.Background()
	// Created inside the switch namespace with the peer born in h's, so no
	// interface ever appears in the caller's namespace.
	if _, err := ipIn(ctx, sw.NS, "link", "add", "name", port, "type", "veth", "peer", "name", ifname, "netns", h.NS); err != nil {
		return nil, err
	}
	if _, err := ipIn(ctx, sw.NS, "link", "set", "dev", port, "master", sw.Bridge, "up"); err != nil {
		return nil, err
	}
	if _, err := ipIn(ctx, h.NS, "link", "set", "dev", ifname, "up"); err != nil {
		return nil, err
	}
	for _, p := range prefixes {
		if err := h.AddAddr(ifname, p.String()); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// AddAddr adds cidr ("10.0.0.1/24", "fd00::1/64") to ifname: IPv6 with
// nodad, IPv4 with the subnet broadcast. This is `ip addr add`, the way a
// VIP is brought up by hand.
func (h *Host) AddAddr(ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h, err)
	}
	args := []string{"addr", "add", p.String(), "dev", ifname}
	switch {
	case p.Addr().Is6() && !p.Addr().Is4In6():
		args = append(args, "nodad")
	case p.Bits() < 31:
		args = append(args, "broadcast", "+")
	}
	_, err = ipIn(context.Background(), h.NS, args...)
	return err
}

// SetUp raises or drops the carrier the host sees on the link, like plugging
// or pulling the cable: it sets the bridge-side end up or down, and the
// host's end, still administratively up, goes NO-CARRIER (no LOWER_UP,
// operstate DOWN) and comes back. Addresses stay configured; IPv6 ones
// survive because the lab sets keep_addr_on_down. This is the link failure
// for failover tests.
func (k *Link) SetUp(up bool) error {
	_, err := ipIn(context.Background(), k.Switch.NS, "link", "set", "dev", k.Port, upDown(up))
	return err
}

// SetHostUp sets the host's end administratively up or down (`ip link set
// dev NAME down` inside the host), as an administrator would. Routes through
// the interface go; IPv6 addresses stay (keep_addr_on_down).
func (k *Link) SetHostUp(up bool) error {
	_, err := ipIn(context.Background(), k.Host.NS, "link", "set", "dev", k.Name, upDown(up))
	return err
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
