package kernel

import (
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// statusDying is IPS_DYING (enum ip_conntrack_status): the entry is being
// destroyed; dumps may still show it.
const statusDying uint32 = 1 << 9

// Filter selects the flows worth syncing: by default the flows this router
// forwards, of the protocols sync handles. The zero Filter is the default.
//
// A flow is left out when any of these holds (Match):
//
//   - it is not a valid flow (flow.Flow.Valid: mixed families, unknown
//     protocol), or its protocol is not in Protocols;
//   - any address of either tuple is loopback, multicast, link-local,
//     unspecified or the IPv4 limited broadcast: nothing a router forwards;
//   - it is router-local: Local(Orig.Src) (the router opened it) or
//     Local(Reply.Src) (the router answers it: addressed to the router, or
//     redirected to it). The addresses a NAT puts in are not looked at:
//     masqueraded LAN→WAN flows have Reply.Dst = the router's WAN address
//     and port forwards have Orig.Dst = the router's WAN address; both
//     are forwarded and kept;
//   - it is UDP from or to SyncPort (the sync traffic itself, should Local
//     not know the address it uses);
//   - Zones is set and does not hold its zone;
//   - Include is set and neither Orig.Src nor Orig.Dst is in it, or
//     Orig.Src or Orig.Dst is in Exclude;
//   - MarkMask is set and Mark&MarkMask != Filter.Mark;
//   - it is TCP and its state comes before MinTCPState in a connection's
//     life (see below);
//   - Assured is set and the flow is not IPS_ASSURED;
//   - it is dying (IPS_DYING), as dumps can show.
//
// DESTROY events are checked against the first six rules only: an entry
// that ends has left the states MinTCPState and Assured select, and the
// consumer ignores keys it does not know.
//
// A Filter must not be changed once passed to Open; Local may change its
// answers at any time (AddrSet).
type Filter struct {
	// Local reports whether addr is an address of this router: all its
	// interfaces' addresses, including the CARP virtual addresses it
	// holds, from the moment the kernel has them. It must be current and
	// must not block; carpd's daemon gives the IsLocal of its one watcher
	// of links and addresses (vip.Watcher), an AddrSet also fits. With nil
	// (or NoLocalAddrs), no address is local: the router-local check is
	// off.
	Local func(addr netip.Addr) bool
	// SyncPort is the UDP port of the sync traffic; 0 means none.
	SyncPort uint16
	// Protocols lists the IP protocols to sync; nil means TCP, UDP, ICMP,
	// ICMPv6 and SCTP.
	Protocols []uint8
	// Include, if not empty, keeps only flows whose original source or
	// destination is in one of its prefixes; Exclude leaves out flows
	// whose original source or destination is in one of its prefixes.
	Include, Exclude []netip.Prefix
	// Zones, if not empty, keeps only flows of these conntrack zones.
	Zones []uint16
	// Mark and MarkMask keep only flows with Mark&MarkMask == Mark; a zero
	// MarkMask keeps all marks.
	Mark, MarkMask uint32
	// MinTCPState leaves out TCP flows that have not reached this state
	// (flow.TCP* constants), in the order of a connection's life:
	// NONE, SYN_SENT, SYN_SENT2, SYN_RECV, ESTABLISHED, FIN_WAIT,
	// CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE. So flow.TCPEstablished
	// keeps established and closing connections and leaves out
	// handshakes. 0 (NONE) keeps all.
	MinTCPState uint8
	// Assured keeps only IPS_ASSURED flows (TCP: handshake completed; UDP:
	// traffic seen both ways, then more).
	Assured bool
	// VIPs are the router's virtual (CARP) addresses, from its config.
	// Only CheckReceived looks at them: the only addresses of the router
	// a flow of the peer may carry, and only as the address of a NAT.
	VIPs []netip.Addr
}

// NoLocalAddrs is a Filter.Local that knows no local address: it turns the
// router-local check off.
func NoLocalAddrs(netip.Addr) bool { return false }

// Match reports whether f passes the filter (see Filter).
func (fl *Filter) Match(f *flow.Flow) bool { return fl.Check(f) == flow.Accepted }

// Check is Match with the reason: the first rule that leaves f out.
func (fl *Filter) Check(f *flow.Flow) flow.Refusal {
	if r := fl.checkStatic(f); r != flow.Accepted {
		return r
	}
	if f.Status&statusDying != 0 {
		return flow.RefusedState
	}
	if fl.MarkMask != 0 && f.Mark&fl.MarkMask != fl.Mark {
		return flow.RefusedMark
	}
	if fl.Assured && f.Status&flow.StatusAssured == 0 {
		return flow.RefusedState
	}
	if fl.MinTCPState != flow.TCPNone && f.Orig.Proto == flow.ProtoTCP &&
		tcpRank(f.TCPState) < tcpRank(fl.MinTCPState) {
		return flow.RefusedState
	}
	return flow.Accepted
}

// CheckReceived is the filter on the receiving side: a flow of the peer
// is injected only if this router would have synced it itself (Check),
// and it touches none of the router's own addresses but its virtual ones
// (VIPs), and those only as a NAT address: no address of either tuple is
// Local unless it is in VIPs, and neither Orig.Src nor Reply.Src is a VIP
// (the VIP the router opened a connection from, or answers on, is the
// router's own connection, whether it holds the VIP now or not). So no
// peer can open a way to the router itself (an "established" entry to
// its sshd) or put a NAT on one of its real addresses.
func (fl *Filter) CheckReceived(f *flow.Flow) flow.Refusal {
	if r := fl.Check(f); r != flow.Accepted {
		return r
	}
	vip := func(a netip.Addr) bool { return slices.Contains(fl.VIPs, a) }
	if vip(f.Orig.Src) || vip(f.Reply.Src) {
		return flow.RefusedLocal
	}
	if fl.Local != nil {
		for _, a := range [...]netip.Addr{f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst} {
			if fl.Local(a) && !vip(a) {
				return flow.RefusedLocal
			}
		}
	}
	return flow.Accepted
}

// matchEvent is Match for NEW and UPDATE events and the first rules of
// Match for DESTROY events.
func (fl *Filter) matchEvent(ev *flow.Event) bool {
	if ev.Type == flow.EventDestroy {
		return fl.checkStatic(&ev.Flow) == flow.Accepted
	}
	return fl.Match(&ev.Flow)
}

// checkStatic checks what cannot change during a flow's life: protocol,
// addresses, zone.
func (fl *Filter) checkStatic(f *flow.Flow) flow.Refusal {
	if f.Valid() != nil {
		return flow.RefusedInvalid
	}
	if !fl.protocol(f.Orig.Proto) {
		return flow.RefusedProtocol
	}
	for _, a := range [...]netip.Addr{f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst} {
		if !forwardable(a) {
			return flow.RefusedAddress
		}
	}
	if fl.Local != nil && (fl.Local(f.Orig.Src) || fl.Local(f.Reply.Src)) {
		return flow.RefusedLocal
	}
	if fl.SyncPort != 0 && f.Orig.Proto == flow.ProtoUDP &&
		(f.Orig.SrcPort == fl.SyncPort || f.Orig.DstPort == fl.SyncPort) {
		return flow.RefusedLocal
	}
	if len(fl.Zones) > 0 && !slices.Contains(fl.Zones, f.Zone) {
		return flow.RefusedZone
	}
	if len(fl.Include) > 0 && !inAny(fl.Include, f.Orig.Src) && !inAny(fl.Include, f.Orig.Dst) {
		return flow.RefusedAddress
	}
	if inAny(fl.Exclude, f.Orig.Src) || inAny(fl.Exclude, f.Orig.Dst) {
		return flow.RefusedAddress
	}
	return flow.Accepted
}

// protocol reports whether proto is selected.
func (fl *Filter) protocol(proto uint8) bool {
	if fl.Protocols == nil {
		switch proto {
		case flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoICMPv6, flow.ProtoSCTP:
			return true
		}
		return false
	}
	return slices.Contains(fl.Protocols, proto)
}

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// forwardable reports whether a router could forward traffic from or to a.
func forwardable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && a != limitedBroadcast
}

// inAny reports whether a is in one of ps.
func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// tcpRank orders TCP conntrack states along a connection's life.
func tcpRank(state uint8) int {
	switch state {
	case flow.TCPNone:
		return 0
	case flow.TCPSynSent:
		return 1
	case flow.TCPSynSent2:
		return 2
	case flow.TCPSynRecv:
		return 3
	case flow.TCPEstablished:
		return 4
	case flow.TCPFinWait:
		return 5
	case flow.TCPCloseWait:
		return 6
	case flow.TCPLastAck:
		return 7
	case flow.TCPTimeWait:
		return 8
	case flow.TCPClose:
		return 9
	}
	return 10 // unknown: later than everything, as the kernel may add states
}

// AddrSet is a set of addresses for Filter.Local, replaced as a whole with
// Store and safe for concurrent use: Contains never blocks.
type AddrSet struct {
	m atomic.Pointer[map[netip.Addr]struct{}]
}

// NewAddrSet returns a set holding addrs.
func NewAddrSet(addrs ...netip.Addr) *AddrSet {
	s := new(AddrSet)
	s.Store(addrs)
	return s
}

// Store replaces the set's addresses with addrs. IPv4-mapped IPv6 addresses
// are stored as IPv4 and zones are dropped, as conntrack has neither.
func (s *AddrSet) Store(addrs []netip.Addr) {
	m := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		m[a.Unmap().WithZone("")] = struct{}{}
	}
	s.m.Store(&m)
}

// Contains reports whether a is in the set.
func (s *AddrSet) Contains(a netip.Addr) bool {
	m := s.m.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[a]
	return ok
}

// Addrs returns the set's addresses, sorted.
func (s *AddrSet) Addrs() []netip.Addr {
	m := s.m.Load()
	if m == nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(*m))
	for a := range *m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
