package kernel

import (
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// TestCheckReceived: the receiver applies the filter it sends with, and
// refuses flows that touch its own addresses other than its VIPs, or that
// come from or are answered by a VIP (its own connections).
func TestCheckReceived(t *testing.T) {
	addr := netip.MustParseAddr
	local := NewAddrSet(addr("203.0.113.2"), addr("192.168.1.2"), addr("203.0.113.1")) // WAN, LAN, WAN VIP (held)
	fl := Filter{Local: local.Contains, SyncPort: 7112, Protocols: []uint8{flow.ProtoTCP},
		Zones: []uint16{0}, VIPs: []netip.Addr{addr("203.0.113.1"), addr("192.168.1.1")}}
	set := func(fn func(f *flow.Flow)) flow.Flow { return filterFlow(fn) }
	tests := []struct {
		name string
		f    flow.Flow
		want flow.Refusal
	}{
		{"masquerade onto a VIP", filterFlow(nil), flow.Accepted},
		{"port forward on a VIP", set(func(f *flow.Flow) {
			f.Orig = tuple("198.51.100.7", 50000, "203.0.113.1", 8080, 6)
			f.Reply = tuple("192.168.1.20", 80, "198.51.100.7", 50000, 6)
		}), flow.Accepted},
		{"established to our own sshd", set(func(f *flow.Flow) {
			f.Orig = tuple("192.168.1.10", 40000, "192.168.1.2", 22, 6)
			f.Reply = tuple("192.168.1.2", 22, "192.168.1.10", 40000, 6)
		}), flow.RefusedLocal},
		{"port forward on our own WAN address", set(func(f *flow.Flow) {
			f.Orig = tuple("198.51.100.7", 50000, "203.0.113.2", 8080, 6)
			f.Reply = tuple("192.168.1.20", 80, "198.51.100.7", 50000, 6)
		}), flow.RefusedLocal},
		{"NAT onto our own WAN address", set(func(f *flow.Flow) { f.Reply.Dst = addr("203.0.113.2") }), flow.RefusedLocal},
		{"to a VIP we do not hold (our sshd on the LAN VIP)", set(func(f *flow.Flow) {
			f.Orig = tuple("192.168.1.10", 40000, "192.168.1.1", 22, 6)
			f.Reply = tuple("192.168.1.1", 22, "192.168.1.10", 40000, 6)
		}), flow.RefusedLocal},
		{"UDP, which we do not sync", set(func(f *flow.Flow) {
			f.Orig.Proto, f.Reply.Proto, f.TCPState = flow.ProtoUDP, flow.ProtoUDP, 0
		}), flow.RefusedProtocol},
		{"a zone we do not use", set(func(f *flow.Flow) { f.Zone = 7 }), flow.RefusedZone},
		{"loopback", set(func(f *flow.Flow) { f.Orig.Dst, f.Reply.Src = addr("127.0.0.1"), addr("127.0.0.1") }), flow.RefusedAddress},
	}
	for _, tc := range tests {
		if got := fl.CheckReceived(&tc.f); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		// The sender's filter is the same one: whatever it keeps and the
		// receiver refuses is about the receiver's own addresses.
		if fl.Check(&tc.f) == flow.Accepted && fl.CheckReceived(&tc.f) != flow.Accepted &&
			fl.CheckReceived(&tc.f) != flow.RefusedLocal {
			t.Errorf("%s: the receiver refuses what the sender keeps, not for a local address", tc.name)
		}
	}
}

// TestTimeoutsMax: the longest timeout by protocol and state, from the
// sysctls read, defaults for the rest.
func TestTimeoutsMax(t *testing.T) {
	tm := DefaultTimeouts
	tm.load(func(name string) (uint32, bool) {
		switch name {
		case "nf_conntrack_tcp_timeout_established":
			return 7440, true // OpenWrt's
		case "nf_conntrack_udp_timeout_stream":
			return 180, true
		}
		return 0, false
	})
	f := func(proto, state uint8, status uint32) *flow.Flow {
		return &flow.Flow{Orig: flow.Tuple{Proto: proto}, TCPState: state, Status: status}
	}
	for _, tc := range []struct {
		f    *flow.Flow
		want uint32
	}{
		{f(flow.ProtoTCP, flow.TCPEstablished, 0), 7440},
		{f(flow.ProtoTCP, flow.TCPNone, 0), 7440},
		{f(flow.ProtoTCP, flow.TCPFinWait, 0), 120},
		{f(flow.ProtoTCP, flow.TCPClose, 0), 10},
		{f(flow.ProtoUDP, 0, 0), 30},
		{f(flow.ProtoUDP, 0, flow.StatusSeenReply), 180},
		{f(flow.ProtoICMP, 0, 0), 30},
		{f(flow.ProtoSCTP, 0, 0), 210},
		{f(47, 0, 0), 600},
	} {
		if got := tm.Max(tc.f); got != tc.want {
			t.Errorf("proto %d state %d status %#x: %d, want %d", tc.f.Orig.Proto, tc.f.TCPState, tc.f.Status, got, tc.want)
		}
	}
}
