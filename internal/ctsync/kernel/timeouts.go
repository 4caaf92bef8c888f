package kernel

import "github.com/carpd/carpd/internal/ctsync/flow"

// Timeouts are the kernel's default conntrack timeouts in seconds, by
// protocol and state: the nf_conntrack_*_timeout* sysctls of a network
// namespace (ReadTimeouts). A flow of the peer gets no longer than these:
// the kernel itself never gives an entry more, so a longer one is a peer
// that wants an entry to outlive its connection.
type Timeouts struct {
	TCP       [flow.TCPSynSent2 + 1]uint32 // by TCP state
	UDP       uint32                       // nf_conntrack_udp_timeout: no reply seen
	UDPStream uint32                       // nf_conntrack_udp_timeout_stream: replied
	ICMP      uint32
	ICMPv6    uint32
	SCTP      uint32 // the longest SCTP state's (established)
	Generic   uint32
}

// DefaultTimeouts are the kernel's built-in defaults (Linux 6.x), for
// the sysctls that cannot be read.
var DefaultTimeouts = Timeouts{
	TCP: [...]uint32{
		flow.TCPNone:        432000, // not a state the kernel keeps; as established
		flow.TCPSynSent:     120,
		flow.TCPSynRecv:     60,
		flow.TCPEstablished: 432000,
		flow.TCPFinWait:     120,
		flow.TCPCloseWait:   60,
		flow.TCPLastAck:     30,
		flow.TCPTimeWait:    120,
		flow.TCPClose:       10,
		flow.TCPSynSent2:    120,
	},
	UDP: 30, UDPStream: 120, ICMP: 30, ICMPv6: 30, SCTP: 210, Generic: 600,
}

// tcpTimeoutSysctls names the sysctl of each TCP state, under
// net/netfilter/.
var tcpTimeoutSysctls = [...]string{
	flow.TCPSynSent:     "nf_conntrack_tcp_timeout_syn_sent",
	flow.TCPSynRecv:     "nf_conntrack_tcp_timeout_syn_recv",
	flow.TCPEstablished: "nf_conntrack_tcp_timeout_established",
	flow.TCPFinWait:     "nf_conntrack_tcp_timeout_fin_wait",
	flow.TCPCloseWait:   "nf_conntrack_tcp_timeout_close_wait",
	flow.TCPLastAck:     "nf_conntrack_tcp_timeout_last_ack",
	flow.TCPTimeWait:    "nf_conntrack_tcp_timeout_time_wait",
	flow.TCPClose:       "nf_conntrack_tcp_timeout_close",
	flow.TCPSynSent2:    "nf_conntrack_tcp_timeout_syn_sent", // the kernel has no sysctl of its own for it
}

// Max is the longest timeout the kernel would give f.
func (t *Timeouts) Max(f *flow.Flow) uint32 {
	switch f.Orig.Proto {
	case flow.ProtoTCP:
		if int(f.TCPState) < len(t.TCP) {
			return t.TCP[f.TCPState]
		}
		return t.TCP[flow.TCPEstablished]
	case flow.ProtoUDP:
		if f.Status&flow.StatusSeenReply != 0 {
			return t.UDPStream
		}
		return t.UDP
	case flow.ProtoICMP:
		return t.ICMP
	case flow.ProtoICMPv6:
		return t.ICMPv6
	case flow.ProtoSCTP:
		return t.SCTP
	}
	return t.Generic
}

// load fills t from read (a sysctl's value under net/netfilter/, ok false
// if it cannot be read), keeping the defaults for what it cannot read.
func (t *Timeouts) load(read func(name string) (uint32, bool)) {
	set := func(dst *uint32, name string) {
		if v, ok := read(name); ok && v > 0 {
			*dst = v
		}
	}
	for st, name := range tcpTimeoutSysctls {
		if name != "" {
			set(&t.TCP[st], name)
		}
	}
	t.TCP[flow.TCPNone] = t.TCP[flow.TCPEstablished]
	set(&t.UDP, "nf_conntrack_udp_timeout")
	set(&t.UDPStream, "nf_conntrack_udp_timeout_stream")
	set(&t.ICMP, "nf_conntrack_icmp_timeout")
	set(&t.ICMPv6, "nf_conntrack_icmpv6_timeout")
	set(&t.SCTP, "nf_conntrack_sctp_timeout_established")
	set(&t.Generic, "nf_conntrack_generic_timeout")
}
