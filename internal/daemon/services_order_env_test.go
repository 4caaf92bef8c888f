package daemon

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// TestEnvServiceBackupAfterVIPs: at a bow-out the old master keeps its VIPs
// until it hears the new master, but its role is backup at once. Its
// services are stopped only once the VIPs are gone (docs/services.md): an
// RA daemon stopped earlier would send its final RA (router lifetime 0)
// from a link-local VIP the new master now holds (docs/ipv6.md).
func TestEnvServiceBackupAfterVIPs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a := newHost(t, seg, "a", config.Default())
		b := newHost(t, seg, "b", config.Default())
		fa := withServices(a)
		var mu sync.Mutex
		var held []string // a's backup actions that ran while a held VIPs
		hook := a.envHook
		a.envHook = func(e *Env) {
			hook(e)
			run := e.RunService
			e.RunService = func(ctx context.Context, s config.Service, action string) (string, error) {
				if action == s.Backup && len(a.port("dev0").Held()) > 0 {
					mu.Lock()
					held = append(held, s.Name)
					mu.Unlock()
				}
				return run(ctx, s, action)
			}
		}
		ra, dhcp := svc("ra", "lan"), svc("dhcp", "lan")
		a.start(withSvcs(a.next, lanVHID(0), ra, dhcp))
		b.start(withSvcs(b.next, lanVHID(100)))
		seg.Run(5 * time.Second)
		synctest.Wait()
		if s := a.vhost("dev0", 1).State; s != "MASTER" {
			t.Fatalf("a is %s", s)
		}
		a.stop()
		seg.Run(2 * time.Second)
		synctest.Wait()
		if got := fa.got(); !sameSet(got[len(got)-2:], []string{"ra stop", "dhcp stop"}) {
			t.Fatalf("a ran %v, want both services stopped at the end", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(held) != 0 {
			t.Errorf("stopped while a still held its VIPs: %v", held)
		}
	})
}

// TestEnvServiceBackupSomeVHIDs: a service follows two vhids and one of
// them leaves MASTER (its link went down). The backup action waits only
// for the VIPs of the vhid that left: the other vhid keeps its VIPs, and
// waiting for them too held the action for the whole VIP wait (5 s).
func TestEnvServiceBackupSomeVHIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		me := newHost(t, seg, "me", config.Default())
		f := withServices(me)
		lan := lanVHID(0)
		wan := vhid("dev1", 2, 0, "carptest", "10.0.1.1/24")
		wan.Name = "wan"
		cfg := cfgWith(me.next, lan, wan)
		cfg.Services = []config.Service{svc("dhcp", "lan", "wan")}
		me.start(cfg)
		seg.Run(5 * time.Second)
		synctest.Wait()
		if got := f.got(); len(got) != 2 || got[1] != "dhcp start" {
			t.Fatalf("ran %v, want stop then start", got)
		}
		me.links.Set("dev1", false)
		seg.Run(100 * time.Millisecond)
		synctest.Wait() // the worker is idle or waits on a (bubble) timer
		if s := me.vhost("dev0", 1).State; s != "MASTER" {
			t.Fatalf("lan is %s, want it still MASTER", s)
		}
		if got := f.got(); len(got) != 3 || got[2] != "dhcp stop" {
			t.Errorf("ran %v once wan's link went down, want dhcp stop at once", got)
		}
	})
}
