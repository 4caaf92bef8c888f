package vip

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/carpd/carpd/ubus/json"
)

// llAddr is what `ip -j -6 addr show` says about one address.
type llAddr struct {
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	NoDAD     bool   `json:"nodad"`
	Tentative bool   `json:"tentative"`
}

// v6Addrs returns the IPv6 addresses of ifname in r1 by "addr/len", with the
// interface index `ip` reports.
func (tb *testbed) v6Addrs(t *testing.T, ifname string) (int, map[string]llAddr) {
	t.Helper()
	out, err := tb.r1.Run(tb.ctx, "ip", "-j", "-6", "addr", "show", "dev", ifname)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		IfIndex  int      `json:"ifindex"`
		AddrInfo []llAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parse %q: %v", out, err)
	}
	m := map[string]llAddr{}
	for _, a := range links[0].AddrInfo {
		m[fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)] = a
	}
	return links[0].IfIndex, m
}

// TestLinuxLinkLocalVIP: a link-local VIP (the LAN's IPv6 default router
// fe80::1) is added with link scope and IFA_F_NODAD on exactly the
// interface named, the same address on a second interface is accepted, the
// unsolicited NA points a client's entry for fe80::1 at r1, and removing it
// from one interface leaves the other one's copy, the interface's own
// link-local address and the fe80::/64 route alone.
func TestLinuxLinkLocalVIP(t *testing.T) {
	tb := newTestbed(t)
	ctx := tb.ctx
	sw2, err := tb.lab.Switch("lan2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.lab.Attach(tb.r1, sw2, "eth1"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"net/ipv6/conf/eth0/accept_dad", "net/ipv6/conf/eth1/accept_dad"} {
		if err := tb.r1.Sysctl(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	eth1, err := New("eth1", tb.log)
	if err != nil {
		t.Fatal(err)
	}
	ll := netip.MustParsePrefix("fe80::1/64")
	vips := []netip.Prefix{ll}
	_, before := tb.v6Addrs(t, "eth0")

	tb.inR1(t, "add eth0", func() error { return tb.announcer.Add(ctx, vips) })
	idx0, got := tb.v6Addrs(t, "eth0")
	a, ok := got[ll.String()]
	if !ok {
		t.Fatalf("%v missing on eth0 after Add: %v", ll, got)
	}
	if a.Scope != "link" || !a.NoDAD || a.Tentative {
		t.Errorf("%v on eth0: scope %q nodad %v tentative %v; want link scope, nodad", ll, a.Scope, a.NoDAD, a.Tentative)
	}
	idx1, got1 := tb.v6Addrs(t, "eth1")
	if _, ok := got1[ll.String()]; ok {
		t.Fatalf("%v on eth1 (index %d) too, added for eth0 (index %d)", ll, idx1, idx0)
	}

	tb.inR1(t, "add eth1", func() error { return eth1.Add(ctx, vips) })
	if _, got1 = tb.v6Addrs(t, "eth1"); got1[ll.String()].Scope != "link" {
		t.Fatalf("the same link-local VIP on a second interface: %v", got1)
	}
	for name, an := range map[string]*Linux{"eth0": tb.announcer, "eth1": eth1} {
		var has bool
		tb.inR1(t, "has", func() (err error) { has, err = an.Has(ctx, ll); return err })
		if !has {
			t.Errorf("Has(%v) on %s = false", ll, name)
		}
	}

	// The unsolicited NA reaches the client on eth0: its entry for
	// fe80::1 (on its own eth0) follows r1.
	tb.setStaleNeighbor(t, ll.Addr())
	tb.inR1(t, "announce", func() error { return tb.announcer.Announce(ctx, []netip.Addr{ll.Addr().WithZone("eth0")}) })
	tb.waitNeighbor(t, ll.Addr())
	if out, err := tb.client.Run(ctx, "ping", "-6", "-c", "1", "-W", "2", "fe80::1%eth0"); err != nil {
		t.Fatalf("client cannot reach fe80::1%%eth0: %v\n%s", err, out)
	}

	tb.inR1(t, "remove eth0", func() error { return tb.announcer.Remove(ctx, vips) })
	_, got = tb.v6Addrs(t, "eth0")
	if _, ok := got[ll.String()]; ok {
		t.Errorf("%v still on eth0 after Remove", ll)
	}
	for k := range before {
		if _, ok := got[k]; !ok {
			t.Errorf("eth0's own %s gone with the VIP: %v", k, got)
		}
	}
	if _, got1 = tb.v6Addrs(t, "eth1"); got1[ll.String()].Local == "" {
		t.Errorf("removing %v from eth0 removed it from eth1: %v", ll, got1)
	}
	routes, err := tb.r1.Run(ctx, "ip", "-6", "route", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(routes, "fe80::/64") {
		t.Errorf("fe80::/64 route on eth0 gone with the VIP: %q", routes)
	}
	tb.inR1(t, "remove eth1", func() error { return eth1.Remove(context.Background(), vips) })
	if _, got1 = tb.v6Addrs(t, "eth1"); got1[ll.String()].Local != "" {
		t.Errorf("%v still on eth1 after Remove", ll)
	}
}
