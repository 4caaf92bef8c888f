package daemon

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

// recordVIPs is an address manager that records what reaches the
// interface.
type recordVIPs struct {
	mu     sync.Mutex
	ops    []string
	as     net.HardwareAddr
	plainN int
}

func (r *recordVIPs) Add(_ context.Context, p []netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range p {
		r.ops = append(r.ops, "add "+x.String())
	}
	return nil
}

func (r *recordVIPs) Remove(_ context.Context, p []netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range p {
		r.ops = append(r.ops, "rm "+x.String())
	}
	return nil
}

func (r *recordVIPs) Announce(context.Context, []netip.Addr) error { r.plainN++; return nil }

func (r *recordVIPs) AnnounceAs(_ context.Context, _ []netip.Addr, hw net.HardwareAddr) error {
	r.as = hw
	return nil
}

func (r *recordVIPs) Close() error { return nil }

// TestSharedVIPs: the section's addresses go on with the first master
// node and off with the last, whatever order the nodes come and go, and
// are announced with the cluster MAC, never the interface's.
func TestSharedVIPs(t *testing.T) {
	r := &recordVIPs{}
	mac := net.HardwareAddr{1, 0, 0x5e, 0, 1, 1}
	s := &sharedVIPs{held: map[netip.Prefix]uint64{}}
	s.set(r, mac)
	n0, n1 := &nodeVIPs{s: s, bit: 0}, &nodeVIPs{s: s, bit: 1}
	p := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")}
	ctx := context.Background()
	_ = n1.Remove(ctx, p) // a node starting as backup clears stale ones
	_ = n0.Add(ctx, p)
	_ = n1.Add(ctx, p)    // already on: nothing
	_ = n0.Remove(ctx, p) // n1 still master: stays
	_ = n1.Announce(ctx, []netip.Addr{p[0].Addr()})
	_ = n1.Remove(ctx, p[:1]) // an address leaves the config
	_ = n1.Remove(ctx, p)
	want := []string{"rm 192.0.2.1/24", "rm 2001:db8::1/64", "add 192.0.2.1/24", "add 2001:db8::1/64",
		"rm 192.0.2.1/24", "rm 192.0.2.1/24", "rm 2001:db8::1/64"} // a Remove nobody holds is passed on (idempotent)
	if !slices.Equal(r.ops, want) {
		t.Errorf("ops %q, want %q", r.ops, want)
	}
	if r.as.String() != mac.String() || r.plainN != 0 {
		t.Errorf("announced as %v, %d times with the interface's MAC", r.as, r.plainN)
	}
}

// TestNodeConfigs: a balanced section runs one vhost per node, with the
// node's vhid and advskew and the section's everything else.
func TestNodeConfigs(t *testing.T) {
	v := config.VHID{Name: "lan", Interface: "eth0", Password: "pw", AdvBase: 1,
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	v.SetNodes([]config.Node{{VHID: 2, AdvSkew: 100}, {VHID: 1, AdvSkew: 0}})
	plain := config.VHID{Name: "wan", Interface: "eth1", VHID: 7}
	got := nodeConfigs(&config.Config{VHIDs: []config.VHID{v, plain}})
	if len(got) != 3 || got[0].VHID != 1 || got[0].AdvSkew != 0 || got[1].VHID != 2 || got[1].AdvSkew != 100 ||
		got[1].Password != "pw" || got[1].Addresses[0] != v.Addresses[0] || got[2].VHID != 7 {
		t.Fatalf("%+v", got)
	}
	if sectionKey(got[0]) != sectionKey(got[1]) || nodeBit(got[1], 2) != 1 || balanced(got[2]) {
		t.Errorf("section %q %q bit %d", sectionKey(got[0]), sectionKey(got[1]), nodeBit(got[1], 2))
	}
}
