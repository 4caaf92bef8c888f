package vip

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/nl"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab"
)

// addrNotification builds an address notification as the kernel sends it,
// marshalled by the rtnetlink library: IFA_LOCAL (and IFA_BROADCAST) for
// IPv4, IFA_ADDRESS alone for IPv6.
func addrNotification(t *testing.T, typ nl.HeaderType, index uint32, p string, bcast string) nl.Message {
	t.Helper()
	pfx := netip.MustParsePrefix(p)
	ip := net.IP(pfx.Addr().AsSlice())
	am := &rtnetlink.AddressMessage{
		Family: unix.AF_INET, PrefixLength: uint8(pfx.Bits()), Index: index,
		Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip},
	}
	if pfx.Addr().Is6() {
		am.Family, am.Attributes.Local = unix.AF_INET6, nil
	}
	if bcast != "" {
		am.Attributes.Broadcast = net.ParseIP(bcast).To4()
	}
	b, err := am.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return nl.Message{Header: nl.Header{Type: typ}, Data: b}
}

// linkNotification builds an RTM_NEWLINK or RTM_DELLINK for an up link.
func linkNotification(t *testing.T, typ nl.HeaderType, index uint32, name string) nl.Message {
	t.Helper()
	b, err := (&rtnetlink.LinkMessage{
		Family: unix.AF_UNSPEC, Index: index, Flags: flagsUp,
		Attributes: &rtnetlink.LinkAttributes{Name: name, OperationalState: rtnetlink.OperStateUp},
	}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return nl.Message{Header: nl.Header{Type: typ}, Data: b}
}

// TestWatcherAddresses feeds the watcher synthesized kernel notifications
// and checks that each address added or removed is seen as soon as the
// read that carried it is applied (no cache, no poll).
func TestWatcherAddresses(t *testing.T) {
	w := &Watcher{events: make(chan LinkEvent, 16), table: newLinkTable(), addrs: newAddrTable(), log: discardIfNil(nil)}
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	wantAddrs := func(ifname string, want ...string) {
		t.Helper()
		var got []string
		for _, x := range w.Addrs(ifname) {
			got = append(got, x.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("Addrs(%s) = %v, want %v", ifname, got, want)
		}
	}

	w.receive([]nl.Message{
		linkNotification(t, unix.RTM_NEWLINK, 2, "eth0"),
		addrNotification(t, unix.RTM_NEWADDR, 2, "192.0.2.1/24", "192.0.2.255"),
		addrNotification(t, unix.RTM_NEWADDR, 2, "fe80::1/64", ""),
	})
	wantAddrs("eth0", "192.0.2.1", "fe80::1")
	for _, x := range []string{"192.0.2.1", "192.0.2.255", "fe80::1", "::ffff:192.0.2.1"} {
		if !w.IsLocal(a(x)) {
			t.Errorf("IsLocal(%s) = false", x)
		}
	}

	// A VIP added: local at once, after the primary.
	vip := a("192.0.2.100")
	if w.IsLocal(vip) {
		t.Fatal("VIP local before it was added")
	}
	w.receive([]nl.Message{addrNotification(t, unix.RTM_NEWADDR, 2, "192.0.2.100/32", "")})
	if !w.IsLocal(vip) {
		t.Error("VIP not local after its RTM_NEWADDR")
	}
	wantAddrs("eth0", "192.0.2.1", "fe80::1", "192.0.2.100")

	// A repeated RTM_NEWADDR (a lifetime update) changes nothing.
	w.receive([]nl.Message{addrNotification(t, unix.RTM_NEWADDR, 2, "192.0.2.100/32", "")})
	wantAddrs("eth0", "192.0.2.1", "fe80::1", "192.0.2.100")

	// Removed: not local at once.
	w.receive([]nl.Message{addrNotification(t, unix.RTM_DELADDR, 2, "192.0.2.100/32", "")})
	if w.IsLocal(vip) {
		t.Error("VIP still local after its RTM_DELADDR")
	}
	wantAddrs("eth0", "192.0.2.1", "fe80::1")

	// An address of a link not yet named is known anywhere, and under the
	// link's name once the link message comes.
	w.receive([]nl.Message{addrNotification(t, unix.RTM_NEWADDR, 3, "198.51.100.1/24", "")})
	if !w.IsLocal(a("198.51.100.1")) {
		t.Error("address of an unnamed link not local")
	}
	w.receive([]nl.Message{linkNotification(t, unix.RTM_NEWLINK, 3, "eth1")})
	wantAddrs("eth1", "198.51.100.1")

	// A link that goes takes its addresses with it.
	w.receive([]nl.Message{linkNotification(t, unix.RTM_DELLINK, 3, "eth1")})
	wantAddrs("eth1")
	if w.IsLocal(a("198.51.100.1")) {
		t.Error("address of a deleted link still local")
	}

	// Malformed messages are dropped, the table stays.
	w.receive([]nl.Message{{Header: nl.Header{Type: unix.RTM_NEWADDR}, Data: []byte{2, 24}}})
	wantAddrs("eth0", "192.0.2.1", "fe80::1")
}

// TestWatcherAddressVeth adds and removes an address on a veth in a
// namespace and checks that IsLocal and Addrs follow within 100 ms (the
// cache this watcher replaced could be 30 s stale).
func TestWatcherAddressVeth(t *testing.T) {
	tb := newTestbed(t)
	var w *Watcher
	tb.inR1(t, "watch", func() (err error) {
		w, err = Watch(tb.ctx, tb.log)
		return err
	})
	defer func() {
		w.Close()
		checkNoWatcherGoroutine(t)
	}()
	if !w.IsLocal(netip.MustParseAddr("192.0.2.1")) || !slices.Contains(w.Addrs("eth0"), netip.MustParseAddr("192.0.2.1")) {
		t.Fatalf("eth0's address not known at start: %v", w.Addrs("eth0"))
	}

	for _, p := range []string{"192.0.2.77/32", "2001:db8::77/128"} {
		x := netip.MustParsePrefix(p).Addr()
		if w.IsLocal(x) {
			t.Fatalf("%v local before it was added", x)
		}
		if _, err := tb.r1.Run(tb.ctx, "ip", "addr", "add", p, "dev", "eth0", "nodad"); err != nil {
			t.Fatal(err)
		}
		lab.Within(t, 100*time.Millisecond, "added "+p, func() bool { return w.IsLocal(x) && slices.Contains(w.Addrs("eth0"), x) })
		if _, err := tb.r1.Run(tb.ctx, "ip", "addr", "del", p, "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		lab.Within(t, 100*time.Millisecond, "removed "+p, func() bool { return !w.IsLocal(x) && !slices.Contains(w.Addrs("eth0"), x) })
	}
}
