package kernel

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// filterFlow is an established, assured, masqueraded TCP flow
// 192.168.1.10:40000 → 198.51.100.7:443 via 203.0.113.1 (the router), which
// fn may change.
func filterFlow(fn func(f *flow.Flow)) flow.Flow {
	f := flow.Flow{
		Orig:     tuple("192.168.1.10", 40000, "198.51.100.7", 443, flow.ProtoTCP),
		Reply:    tuple("198.51.100.7", 443, "203.0.113.1", 40000, flow.ProtoTCP),
		Status:   flow.StatusConfirmed | flow.StatusSeenReply | flow.StatusAssured | flow.StatusSrcNAT,
		Timeout:  300,
		TCPState: flow.TCPEstablished,
	}
	if fn != nil {
		fn(&f)
	}
	return f
}

// udpFlow is an un-NATed UDP flow from sport to dport.
func udpFlow(sport, dport uint16) flow.Flow {
	return flow.Flow{
		Orig:    tuple("192.168.1.10", sport, "198.51.100.7", dport, flow.ProtoUDP),
		Reply:   tuple("198.51.100.7", dport, "192.168.1.10", sport, flow.ProtoUDP),
		Timeout: 30,
	}
}

func TestFilterMatch(t *testing.T) {
	local := NewAddrSet(
		netip.MustParseAddr("203.0.113.1"),   // WAN
		netip.MustParseAddr("192.168.1.1"),   // LAN
		netip.MustParseAddr("192.168.1.254"), // LAN VIP
	)
	router := Filter{Local: local.Contains, SyncPort: 8007}
	set := func(fn func(f *flow.Flow)) flow.Flow { return filterFlow(fn) }
	addr := netip.MustParseAddr
	tests := []struct {
		name   string
		filter Filter
		f      flow.Flow
		want   bool
	}{
		{"zero filter keeps a forwarded flow", Filter{}, filterFlow(nil), true},
		{"masquerade: reply to the router's address", router, filterFlow(nil), true},
		{"port forward: sent to the router's address", router, set(func(f *flow.Flow) {
			f.Orig = tuple("198.51.100.7", 50000, "203.0.113.1", 8080, 6)
			f.Reply = tuple("192.168.1.20", 80, "198.51.100.7", 50000, 6)
		}), true},
		{"opened by the router", router, set(func(f *flow.Flow) {
			f.Orig.Src, f.Reply.Dst = addr("203.0.113.1"), addr("203.0.113.1")
		}), false},
		{"opened by the router from its VIP", router, set(func(f *flow.Flow) {
			f.Orig.Src, f.Reply.Dst = addr("192.168.1.254"), addr("192.168.1.254")
		}), false},
		{"addressed to the router", router, set(func(f *flow.Flow) {
			f.Orig.Dst, f.Reply.Src = addr("192.168.1.1"), addr("192.168.1.1")
			f.Reply.Dst = f.Orig.Src
		}), false},
		{"redirected to the router", router, set(func(f *flow.Flow) {
			f.Reply = tuple("192.168.1.1", 3128, "192.168.1.10", 40000, 6)
		}), false},
		{"no local check with NoLocalAddrs", Filter{Local: NoLocalAddrs}, set(func(f *flow.Flow) {
			f.Orig.Src, f.Reply.Dst = addr("203.0.113.1"), addr("203.0.113.1")
		}), true},
		{"loopback", Filter{}, set(func(f *flow.Flow) {
			f.Orig.Dst, f.Reply.Src = addr("127.0.0.1"), addr("127.0.0.1")
		}), false},
		{"multicast", Filter{}, set(func(f *flow.Flow) {
			f.Orig.Dst, f.Reply.Src = addr("239.1.2.3"), addr("239.1.2.3")
		}), false},
		{"limited broadcast", Filter{}, set(func(f *flow.Flow) {
			f.Orig.Dst, f.Reply.Src = addr("255.255.255.255"), addr("255.255.255.255")
		}), false},
		{"link-local IPv6", Filter{}, flow.Flow{
			Orig:  tuple("fe80::1", 546, "fe80::2", 547, 17),
			Reply: tuple("fe80::2", 547, "fe80::1", 546, 17),
		}, false},
		{"unspecified (DHCP)", Filter{}, flow.Flow{
			Orig:  tuple("0.0.0.0", 68, "192.168.1.1", 67, 17),
			Reply: tuple("192.168.1.1", 67, "0.0.0.0", 68, 17),
		}, false},
		{"invalid flow", Filter{}, flow.Flow{}, false},
		{"sync traffic to SyncPort", router, udpFlow(40000, 8007), false},
		{"sync traffic from SyncPort", router, udpFlow(8007, 40000), false},
		{"TCP on SyncPort", router, set(func(f *flow.Flow) {
			f.Orig.DstPort, f.Reply.SrcPort = 8007, 8007
		}), true},
		{"default protocols: UDP", Filter{}, udpFlow(5353, 53), true},
		{"Protocols without UDP", Filter{Protocols: []uint8{flow.ProtoTCP}}, udpFlow(5353, 53), false},
		{"Protocols with UDP", Filter{Protocols: []uint8{flow.ProtoUDP}}, udpFlow(5353, 53), true},
		{"Include source", Filter{Include: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}}, filterFlow(nil), true},
		{"Include destination", Filter{Include: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, filterFlow(nil), true},
		{"Include neither", Filter{Include: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, filterFlow(nil), false},
		{"Include the NAT address only", Filter{Include: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}, filterFlow(nil), false},
		{"Exclude destination", Filter{Exclude: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}}, filterFlow(nil), false},
		{"Exclude other", Filter{Exclude: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, filterFlow(nil), true},
		{"Zones match", Filter{Zones: []uint16{0, 5}}, filterFlow(nil), true},
		{"Zones miss", Filter{Zones: []uint16{5}}, filterFlow(nil), false},
		{"Mark match", Filter{Mark: 0x10, MarkMask: 0xf0}, set(func(f *flow.Flow) { f.Mark = 0x1f }), true},
		{"Mark miss", Filter{Mark: 0x10, MarkMask: 0xf0}, set(func(f *flow.Flow) { f.Mark = 0x2f }), false},
		{"no MarkMask keeps all marks", Filter{Mark: 0x10}, set(func(f *flow.Flow) { f.Mark = 0x2f }), true},
		{"MinTCPState: established", Filter{MinTCPState: flow.TCPEstablished}, filterFlow(nil), true},
		{"MinTCPState: time wait is later", Filter{MinTCPState: flow.TCPEstablished}, set(func(f *flow.Flow) { f.TCPState = flow.TCPTimeWait }), true},
		{"MinTCPState: SYN_SENT2 is earlier", Filter{MinTCPState: flow.TCPEstablished}, set(func(f *flow.Flow) { f.TCPState = flow.TCPSynSent2 }), false},
		{"MinTCPState: SYN_RECV is earlier", Filter{MinTCPState: flow.TCPEstablished}, set(func(f *flow.Flow) { f.TCPState = flow.TCPSynRecv }), false},
		{"MinTCPState: UDP has no state", Filter{MinTCPState: flow.TCPEstablished}, udpFlow(5353, 53), true},
		{"Assured", Filter{Assured: true}, filterFlow(nil), true},
		{"not Assured", Filter{Assured: true}, set(func(f *flow.Flow) { f.Status &^= flow.StatusAssured }), false},
		{"dying", Filter{}, set(func(f *flow.Flow) { f.Status |= statusDying }), false},
	}
	for _, tt := range tests {
		if got := tt.filter.Match(&tt.f); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFilterDestroy: a DESTROY passes the rules a flow keeps for life, not
// those about its state.
func TestFilterDestroy(t *testing.T) {
	fl := Filter{
		Local:       NewAddrSet(netip.MustParseAddr("203.0.113.1")).Contains,
		MinTCPState: flow.TCPEstablished,
		Assured:     true,
		Mark:        1,
		MarkMask:    1,
	}
	ending := filterFlow(func(f *flow.Flow) {
		f.TCPState = flow.TCPSynSent
		f.Status = flow.StatusConfirmed | statusDying
	})
	for _, tt := range []struct {
		typ  flow.EventType
		f    flow.Flow
		want bool
	}{
		{flow.EventDestroy, ending, true},
		{flow.EventUpdate, ending, false},
		{flow.EventNew, ending, false},
		{flow.EventDestroy, filterFlow(func(f *flow.Flow) {
			f.Orig.Src, f.Reply.Dst = f.Reply.Dst, f.Orig.Src // the router's own
		}), false},
	} {
		ev := flow.Event{Type: tt.typ, Flow: tt.f}
		if got := fl.matchEvent(&ev); got != tt.want {
			t.Errorf("%v %v: %v, want %v", tt.typ, tt.f.Orig, got, tt.want)
		}
	}
}

func TestAddrSet(t *testing.T) {
	var empty AddrSet
	if empty.Contains(netip.MustParseAddr("10.0.0.1")) || empty.Addrs() != nil {
		t.Errorf("zero AddrSet not empty")
	}
	s := NewAddrSet(netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fe80::1%eth0"))
	for _, a := range []string{"10.0.0.1", "fe80::1"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s missing", a)
		}
	}
	s.Store([]netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")})
	if s.Contains(netip.MustParseAddr("fe80::1")) {
		t.Errorf("Store kept an old address")
	}
	if got, want := s.Addrs(), []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}; !slices.Equal(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}
}
