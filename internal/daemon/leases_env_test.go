package daemon

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
)

// TestEnvLeaseWriterFollowsDnsmasq: with a service role for dnsmasq, the
// lease file is the worker's to write exactly while that role is not
// master here, whatever the other vhids are: a is MASTER of lan but BACKUP
// of wan, which its dnsmasq follows, so its dnsmasq is stopped and the
// peer's leases must reach its file; b, MASTER of wan only, runs dnsmasq.
// Without a service for dnsmasq, any MASTER vhid keeps the file as it is.
func TestEnvLeaseWriterFollowsDnsmasq(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := carptest.New(t)
		a := newHost(t, seg, "a", config.Default())
		b := newHost(t, seg, "b", config.Default())
		withServices(a)
		withServices(b)
		named := func(v config.VHID, name string) config.VHID { v.Name = name; return v }
		dns := config.DefaultService("dhcp")
		dns.Unit, dns.VHIDs = "dnsmasq", []string{"wan"}
		ca := cfgWith(a.next, named(vhid("dev0", 1, 0, "carptest", "10.0.0.1/24"), "lan"),
			named(vhid("dev0", 2, 100, "carptest", "10.0.1.1/24"), "wan"))
		cb := cfgWith(b.next, named(vhid("dev0", 1, 100, "carptest", "10.0.0.1/24"), "lan"),
			named(vhid("dev0", 2, 0, "carptest", "10.0.1.1/24"), "wan"))
		ca.Services, cb.Services = []config.Service{dns}, []config.Service{dns}
		a.start(ca)
		b.start(cb)
		seg.Run(5 * time.Second)
		synctest.Wait()
		if a.vhost("dev0", 1).State != "MASTER" || a.vhost("dev0", 2).State != "BACKUP" ||
			b.vhost("dev0", 2).State != "MASTER" {
			t.Fatalf("a: lan %s wan %s; b: wan %s", a.vhost("dev0", 1).State, a.vhost("dev0", 2).State, b.vhost("dev0", 2).State)
		}
		view := func(h *host) (v leaseView) {
			if err := h.d.do(func() { v = h.d.leaseView() }); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if view(a).master {
			t.Error("a (dnsmasq's role backup) holds the lease file as if dnsmasq ran there")
		}
		if !view(b).master {
			t.Error("b (dnsmasq's role master) would write dnsmasq's own lease file")
		}
		// No service role for dnsmasq: a MASTER vhid may have dnsmasq
		// running unmanaged; the file stays its own.
		var here bool
		if err := a.d.do(func() {
			ss := a.d.services
			a.d.services = nil
			here = a.d.dnsmasqHere()
			a.d.services = ss // Run stops their workers at the end
		}); err != nil {
			t.Fatal(err)
		}
		if !here {
			t.Error("without a dnsmasq service, a MASTER vhid does not hold the file")
		}
	})
}
