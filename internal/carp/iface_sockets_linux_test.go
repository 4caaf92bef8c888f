package carp_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/vip"
)

// nopAnnouncer leaves the VIPs alone: this test is about the sockets.
type nopAnnouncer struct{}

func (nopAnnouncer) Add(context.Context, []netip.Prefix) error    { return nil }
func (nopAnnouncer) Remove(context.Context, []netip.Prefix) error { return nil }
func (nopAnnouncer) Announce(context.Context, []netip.Addr) error { return nil }

// TestIfaceAdvertsOverRealSockets runs vhosts of two routers on one
// segment over real Ifaces, one vhid for each way an advert travels:
// IPv4 and IPv6, multicast (the AF_PACKET frame, read by the raw sockets)
// and unicast (written by the raw sockets: the IPv4 header carpd writes
// itself, the IPv6 hop limit and source given as control messages). The
// backup must hear the master from the master's own address with TTL 255
// (a wrong hop limit or a lost control message counts as bad TTL), and
// the master must not take its own looped-back adverts for a peer's.
func TestIfaceAdvertsOverRealSockets(t *testing.T) {
	lab.Require(t)
	l, err := lab.New("ifsk")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type router struct {
		h   *lab.Host
		v4  netip.Addr
		ll  netip.Addr // IPv6 link-local
		ifc *carp.Iface
	}
	var rs [2]*router
	for n := range rs {
		r := &router{v4: netip.AddrFrom4([4]byte{192, 0, 2, byte(n + 1)})}
		if r.h, err = l.Host(fmt.Sprintf("r%d", n+1)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Attach(r.h, sw, "eth0", r.v4.String()+"/24"); err != nil {
			t.Fatal(err)
		}
		lab.Within(t, 5*time.Second, "an IPv6 link-local address", func() bool {
			as, _ := r.h.Addrs("eth0")
			for _, a := range as {
				if p, err := netip.ParsePrefix(a); err == nil && p.Addr().IsLinkLocalUnicast() {
					r.ll = p.Addr()
					return true
				}
			}
			return false
		})
		var w *vip.Watcher
		if err := r.h.Do(func() (err error) {
			if w, err = vip.Watch(ctx, nil); err != nil {
				return err
			}
			r.ifc, err = carp.OpenIface("eth0", w, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.ifc.Close(); w.Close() })
		// Adverts go ahead of bulk traffic in the qdisc.
		if p4, p6, err := carp.SocketPriorities(r.ifc); err != nil || p4 != 6 || p6 != 6 {
			t.Errorf("SO_PRIORITY of the raw sockets: %d, %d, %v; want 6, 6", p4, p6, err)
		}
		rs[n] = r
	}

	cases := []struct {
		name  string
		vhid  uint8
		vip   string
		peers func(other *router) []netip.Addr
		src   func(master *router) netip.Addr
	}{
		{"IPv4 multicast", 1, "192.0.2.101/24", nil, func(r *router) netip.Addr { return r.v4 }},
		{"IPv4 unicast", 2, "192.0.2.102/24", func(o *router) []netip.Addr { return []netip.Addr{o.v4} }, func(r *router) netip.Addr { return r.v4 }},
		{"IPv6 multicast", 3, "fd00:1::103/64", nil, func(r *router) netip.Addr { return r.ll }},
		{"IPv6 unicast", 4, "fd00:1::104/64", func(o *router) []netip.Addr { return []netip.Addr{o.ll} }, func(r *router) netip.Addr { return r.ll }},
	}
	var vhosts [][2]*carp.VHost
	for _, c := range cases {
		var pair [2]*carp.VHost
		for n, r := range rs {
			cfg := carp.VHostConfig{Interface: "eth0", VHID: c.vhid, Password: "sockets",
				Params:    carp.Params{AdvBase: 1, AdvSkew: uint8(n * 100)},
				Addresses: []netip.Prefix{netip.MustParsePrefix(c.vip)}}
			if c.peers != nil {
				cfg.Peers = c.peers(rs[1-n])
			}
			v := carp.NewVHost(cfg, r.ifc, nopAnnouncer{}, nil, nil)
			r.ifc.Attach(v, cfg)
			done := make(chan struct{})
			go func() { defer close(done); v.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			pair[n] = v
		}
		vhosts = append(vhosts, pair)
	}

	for i, c := range cases {
		master, backup := vhosts[i][0], vhosts[i][1]
		want := c.src(rs[0]).String()
		ok := false
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			m, b := master.Status(), backup.Status()
			if m.State == "MASTER" && b.State == "BACKUP" && b.Master == want && b.Counters.AdvertsReceived >= 2 {
				ok = true
				break
			}
		}
		m, b := master.Status(), backup.Status()
		if !ok {
			t.Errorf("%s: master %s, backup %s hearing %q (want %s), %d adverts received",
				c.name, m.State, b.State, b.Master, want, b.Counters.AdvertsReceived)
		}
		if b.Counters.BadTTL != 0 || b.Counters.BadChecksum != 0 || b.Counters.BadVersion != 0 || b.Counters.BadHMAC != 0 {
			t.Errorf("%s: backup dropped adverts: %+v", c.name, b.Counters)
		}
		if m.Counters.SendErrors != 0 {
			t.Errorf("%s: master counters %+v", c.name, m.Counters)
		}
	}
	for n, r := range rs {
		if s := r.ifc.Stats(); s.ReadErrors != 0 || s.Short != 0 {
			t.Errorf("r%d: interface drops %+v", n+1, s)
		}
	}
}
