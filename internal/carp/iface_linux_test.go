package carp_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/vip"
)

// TestIfaceAddressesFollowKernel opens an Iface on a veth in a namespace,
// with the daemon's watcher as its address source, and checks that an
// address added to or removed from the interface is (no longer) ours
// within 100 ms. Its own looped-back adverts are recognised by IsLocal
// alone, so a stale answer would take our own advert for a peer's.
func TestIfaceAddressesFollowKernel(t *testing.T) {
	lab.Require(t)
	l, err := lab.New("ifat")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := l.Host("r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(r1, sw, "eth0", "192.0.2.1/24"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		w   *vip.Watcher
		ifc *carp.Iface
	)
	if err := r1.Do(func() (err error) {
		if w, err = vip.Watch(ctx, nil); err != nil {
			return err
		}
		ifc, err = carp.OpenIface("eth0", w, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer ifc.Close()

	primary := netip.MustParseAddr("192.0.2.1")
	if got := ifc.Source(false); got != primary {
		t.Errorf("Source(false) = %v, want %v", got, primary)
	}
	if !ifc.IsLocal(primary) {
		t.Errorf("IsLocal(%v) = false", primary)
	}

	x := netip.MustParseAddr("192.0.2.77")
	if ifc.IsLocal(x) {
		t.Fatalf("%v local before it was added", x)
	}
	if _, err := r1.Run(ctx, "ip", "addr", "add", "192.0.2.77/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	lab.Within(t, 100*time.Millisecond, "added", func() bool { return ifc.IsLocal(x) })
	if _, err := r1.Run(ctx, "ip", "addr", "del", "192.0.2.77/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	lab.Within(t, 100*time.Millisecond, "removed", func() bool { return !ifc.IsLocal(x) })

	// A VIP counts as ours from the moment it is configured, before the
	// kernel has it; and it is never the advert's source.
	v := netip.MustParseAddr("192.0.2.100")
	ifc.Attach(nil, carp.VHostConfig{VHID: 7, Addresses: []netip.Prefix{netip.PrefixFrom(v, 32)}})
	if !ifc.IsLocal(v) {
		t.Error("configured VIP not local")
	}
	if got := ifc.Source(false); got != primary {
		t.Errorf("Source(false) = %v with a VIP attached, want %v", got, primary)
	}
	ifc.Detach(7)
	if ifc.IsLocal(v) {
		t.Error("detached VIP still local")
	}
}
