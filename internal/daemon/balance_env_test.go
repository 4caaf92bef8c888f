package daemon

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// fakeDatapaths records what the daemon does with its datapaths.
type fakeDatapaths struct {
	mu  sync.Mutex
	log []string
}

type fakeDatapath struct {
	f   *fakeDatapaths
	dev string
}

func (f *fakeDatapaths) open(dev string, vhid uint8, mac net.HardwareAddr, nodes int) (Datapath, error) {
	f.add(fmt.Sprintf("open %s vhid %d %s nodes %d", dev, vhid, mac, nodes))
	return &fakeDatapath{f: f, dev: dev}, nil
}

func (f *fakeDatapaths) add(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeDatapaths) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (p *fakeDatapath) SetMask(m uint32) error { p.f.add(fmt.Sprintf("mask %#b", m)); return nil }
func (p *fakeDatapath) Close() error           { p.f.add("close " + p.dev); return nil }

func balancedVHID(skews ...uint8) config.VHID {
	v := vhid("dev0", 0, 0, "pw", "10.0.0.1/24")
	v.Name = "lan"
	var nodes []config.Node
	for i, s := range skews {
		nodes = append(nodes, config.Node{VHID: uint8(i + 1), AdvSkew: s})
	}
	v.SetNodes(nodes)
	return v
}

// TestEnvBalanced: two daemons with swapped node advskews each become
// master of one node of the section; each installs the datapath once and
// sets its owned mask on every transition; both hold the shared VIP. When
// b's section is removed by a reload, b's datapath goes and a takes both
// nodes (mask 0b11); when a stops, its datapath goes too.
func TestEnvBalanced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		base := config.Default()
		base.Global.Preempt = true
		a := newHost(t, seg, "a", base)
		cb := *base
		b := newHost(t, seg, "b", &cb)
		var fa, fb fakeDatapaths
		a.envHook = func(e *Env) { e.OpenDatapath = fa.open }
		b.envHook = func(e *Env) { e.OpenDatapath = fb.open }
		a.start(cfgWith(a.next, balancedVHID(0, 100)))
		seg.Run(5 * time.Second)
		b.start(cfgWith(b.next, balancedVHID(100, 0)))
		seg.Run(5 * time.Second)
		for _, c := range []struct {
			h    *host
			mask uint32
		}{{a, 0b01}, {b, 0b10}} {
			for _, id := range []uint8{1, 2} {
				v := c.h.vhost("dev0", id)
				want := "BACKUP"
				if c.mask&(1<<(id-1)) != 0 {
					want = "MASTER"
				}
				if v.State != want || v.Balance == nil || v.Balance.Mask != c.mask || v.Balance.Owned != 1 ||
					v.Balance.MAC != "01:00:5e:00:01:01" || v.Balance.Section != "lan" {
					t.Errorf("%s vhid %d: %s %+v, want %s mask %#b", c.h.node.Name, id, v.State, v.Balance, want, c.mask)
				}
			}
			if held := c.h.port("dev0").Held(); len(held) != 1 || held[0] != pfx("10.0.0.1/24") {
				t.Errorf("%s holds %v, want the shared VIP", c.h.node.Name, held)
			}
		}
		ea, eb := fa.events(), fb.events()
		if ea[0] != "open dev0 vhid 1 01:00:5e:00:01:01 nodes 2" || ea[len(ea)-1] != "mask 0b1" ||
			eb[len(eb)-1] != "mask 0b10" || strings.Count(strings.Join(ea, ";"), "open") != 1 {
			t.Errorf("datapath events a %q b %q", ea, eb)
		}

		b.reload(cfgWith(b.next))
		seg.Run(5 * time.Second)
		if eb := fb.events(); eb[len(eb)-1] != "close dev0" {
			t.Errorf("b's section removed, its datapath events %q", eb)
		}
		if held := b.port("dev0").Held(); len(held) != 0 {
			t.Errorf("b holds %v after its section went", held)
		}
		if v := a.vhost("dev0", 2); v.State != "MASTER" || v.Balance.Mask != 0b11 || v.Balance.Owned != 2 {
			t.Errorf("a after b left: %s %+v", v.State, v.Balance)
		}
		a.stop()
		if ea := fa.events(); ea[len(ea)-1] != "close dev0" {
			t.Errorf("a stopped, its datapath events %q", ea)
		}
	})
}

// TestEnvBalancedService: a service that follows a balanced section runs
// its master action on every router that is master of any node (each
// holds the shared VIP), whichever node that is.
func TestEnvBalancedService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		base := config.Default()
		base.Global.Preempt = true
		a := newHost(t, seg, "a", base)
		cb := *base
		b := newHost(t, seg, "b", &cb)
		var fa, fb fakeDatapaths
		sa, sb := withServices(a), withServices(b)
		for _, x := range []struct {
			h  *host
			fd *fakeDatapaths
		}{{a, &fa}, {b, &fb}} {
			hook, fd := x.h.envHook, x.fd
			x.h.envHook = func(e *Env) { hook(e); e.OpenDatapath = fd.open }
		}
		a.start(withSvcs(a.next, balancedVHID(0, 100), svc("dhcp", "lan")))
		seg.Run(5 * time.Second)
		b.start(withSvcs(b.next, balancedVHID(100, 0), svc("dhcp", "lan")))
		seg.Run(5 * time.Second)
		synctest.Wait()
		if v := b.vhost("dev0", 2); v.State != "MASTER" || b.vhost("dev0", 1).State != "BACKUP" {
			t.Fatalf("b: node 1 %s, node 2 %s; want BACKUP, MASTER", b.vhost("dev0", 1).State, v.State)
		}
		for _, c := range []struct {
			h *host
			f *fakeServices
		}{{a, sa}, {b, sb}} {
			if got := c.f.got(); len(got) == 0 || got[len(got)-1] != "dhcp start" {
				t.Errorf("%s ran %v, want dhcp start last (master of a node)", c.h.node.Name, got)
			}
			if s := serviceOf(t, c.h, "dhcp"); s.Role != "master" {
				t.Errorf("%s: role %s, want master", c.h.node.Name, s.Role)
			}
		}
	})
}
