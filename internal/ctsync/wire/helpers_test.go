package wire

import (
	"net/netip"
	"testing"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/google/go-cmp/cmp"
)

var (
	wan4  = netip.MustParseAddr("203.0.113.7")
	wan4b = netip.MustParseAddr("198.51.100.9")
	lan4  = netip.MustParseAddr("192.168.1.23")
	srv4  = netip.MustParseAddr("93.184.216.34")
	wan6  = netip.MustParseAddr("2001:db8:ffff::1")
	lan6  = netip.MustParseAddr("2001:db8:1::23")
	srv6  = netip.MustParseAddr("2606:2800:220:1:248:1893:25c8:1946")
)

// natDone are IPS_SRC_NAT_DONE|IPS_DST_NAT_DONE, which the kernel sets on
// every flow once a NAT table exists.
const natDone = 1<<7 | 1<<8

// mkFlow builds a flow from its original tuple and NAT: snat/dnat are the
// rewritten address and port (zero Addr: no NAT of that side).
func mkFlow(proto uint8, src, dst netip.Addr, sport, dport uint16,
	snat netip.Addr, snatPort uint16, dnat netip.Addr, dnatPort uint16) flow.Flow {
	orig := flow.Tuple{Src: src, Dst: dst, Proto: proto, SrcPort: sport, DstPort: dport}
	rs, rd := defaultReplyPorts(&orig)
	reply := flow.Tuple{Src: dst, Dst: src, Proto: proto, SrcPort: rs, DstPort: rd}
	if snat.IsValid() {
		reply.Dst, reply.DstPort = snat, snatPort
	}
	if dnat.IsValid() {
		reply.Src, reply.SrcPort = dnat, dnatPort
	}
	f := flow.Flow{Orig: orig, Reply: reply}
	return f
}

// masqFlow is the common case: a LAN client's TCP flow masqueraded to the
// WAN address, source port kept.
func masqFlow(i int) flow.Flow {
	src := netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i%200)})
	dst := netip.AddrFrom4([4]byte{byte(20 + i%180), byte(i * 7), byte(i * 13), byte(1 + i%250)})
	sport := uint16(40000 + i*7)
	f := mkFlow(flow.ProtoTCP, src, dst, sport, 443, wan4, sport, netip.Addr{}, 0)
	f.Status = flow.StatusConfirmed | flow.StatusSrcNAT | natDone // as the kernel reports it
	f.TCPState = flow.TCPSynSent
	f.Timeout = 120
	return f
}

// sampleFlows covers every family, protocol and NAT shape.
func sampleFlows() map[string]flow.Flow {
	m := map[string]flow.Flow{}
	f := masqFlow(1)
	m["v4 tcp masquerade syn_sent"] = f

	f = masqFlow(2)
	f.TCPState, f.Timeout = flow.TCPEstablished, 432000
	f.Status |= flow.StatusSeenReply | flow.StatusAssured
	m["v4 tcp masquerade established"] = f

	f = mkFlow(flow.ProtoTCP, lan4, srv4, 51000, 22, netip.Addr{}, 0, netip.Addr{}, 0)
	f.TCPState, f.Timeout, f.Status = flow.TCPEstablished, 7439, flow.StatusConfirmed|flow.StatusAssured|flow.StatusSeenReply|natDone
	m["v4 tcp no nat"] = f

	f = mkFlow(flow.ProtoUDP, lan4, srv4, 5353, 53, wan4, 61001, netip.Addr{}, 0)
	f.Timeout, f.Status = 30, flow.StatusConfirmed|flow.StatusSrcNAT|natDone
	m["v4 udp snat port change"] = f

	f = mkFlow(flow.ProtoTCP, srv4, wan4, 60123, 8080, netip.Addr{}, 0, lan4, 80)
	f.TCPState, f.Timeout = flow.TCPSynRecv, 60
	f.Status = flow.StatusConfirmed | flow.StatusDstNAT | flow.StatusSeenReply | natDone
	m["v4 tcp dnat port forward"] = f

	f = mkFlow(flow.ProtoUDP, lan4, srv4, 1194, 1194, wan4b, 1194, netip.MustParseAddr("10.0.0.2"), 1195)
	f.Timeout, f.Status = 180, flow.StatusConfirmed|flow.StatusSrcNAT|flow.StatusDstNAT|flow.StatusAssured|natDone
	m["v4 udp snat+dnat"] = f

	f = mkFlow(flow.ProtoTCP, lan6, srv6, 40000, 443, netip.Addr{}, 0, netip.Addr{}, 0)
	f.TCPState, f.Timeout, f.Status = flow.TCPEstablished, 432000, flow.StatusConfirmed|flow.StatusAssured|flow.StatusSeenReply
	f.TCPWScaleOrig, f.TCPWScaleReply = 7, 9
	f.TCPFlagsOrig, f.TCPFlagsReply = flow.TCPFlagWindowScale|flow.TCPFlagSACKPerm, flow.TCPFlagWindowScale
	m["v6 tcp wscale flags"] = f

	f = mkFlow(flow.ProtoUDP, lan6, srv6, 40000, 443, wan6, 40000, netip.Addr{}, 0)
	f.Timeout, f.Status = 61, flow.StatusConfirmed|flow.StatusSrcNAT
	m["v6 udp nat66"] = f

	f = mkFlow(flow.ProtoICMP, lan4, srv4, 0x1234, 8<<8, wan4, 0x9999, netip.Addr{}, 0)
	f.Timeout, f.Status = 30, flow.StatusConfirmed|flow.StatusSrcNAT|flow.StatusSeenReply|natDone
	m["v4 icmp echo masq id change"] = f

	f = mkFlow(flow.ProtoICMPv6, lan6, srv6, 77, 128<<8, netip.Addr{}, 0, netip.Addr{}, 0)
	f.Timeout, f.Status = 30, flow.StatusConfirmed // no NAT table: no NAT_DONE bits
	m["v6 icmpv6 echo"] = f

	f = mkFlow(flow.ProtoSCTP, lan4, srv4, 2905, 2905, wan4, 2905, netip.Addr{}, 0)
	f.Zone, f.Mark, f.Timeout = 7, 0xdeadbeef, 3600
	f.Status = flow.StatusConfirmed | flow.StatusSrcNAT | flow.StatusOffload | natDone
	m["v4 sctp zone mark offload"] = f

	f = mkFlow(flow.ProtoTCP, lan4, srv4, 1, 2, wan4, 1, netip.Addr{}, 0)
	f.TCPState, f.TCPFlagsOrig, f.TCPFlagsReply = flow.TCPTimeWait, flow.TCPFlagBeLiberal, flow.TCPFlagBeLiberal
	f.Status = flow.StatusConfirmed // SRC_NAT missing although the reply is NATed
	m["v4 tcp same flags, status without nat bit"] = f

	f = mkFlow(47, lan6, srv6, 0, 0, netip.Addr{}, 0, netip.Addr{}, 0) // GRE via the protocol byte
	f.Status, f.Timeout = 1<<31|flow.StatusSrcNAT, 1<<32-1
	m["v6 gre odd status max timeout"] = f

	f = mkFlow(flow.ProtoTCP, lan4, srv4, 80, 80, lan4, 81, srv4, 82) // port-only NAT both ways
	f.TCPState, f.Zone = flow.TCPSynSent2, 65535
	m["v4 port-only nat zone max"] = f
	return m
}

func mustAppend(t testing.TB, recs []Record) []byte {
	t.Helper()
	b, err := appendRecords(nil, recs)
	if err != nil {
		t.Fatalf("appendRecords: %v", err)
	}
	return b
}

// decodeAll decodes b into a slice of records with their own memory.
func decodeAll(b []byte) ([]Record, error) {
	var out []Record
	err := DecodeRecords(b, func(r *Record) error {
		c := *r
		if r.Ack.Ranges != nil {
			c.Ack.Ranges = append([]AckRange(nil), r.Ack.Ranges...)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// diff is cmp.Diff that compares netip.Addr by value.
func diff(want, got any) string {
	return cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }))
}
