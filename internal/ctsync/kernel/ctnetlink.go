package kernel

// The ctnetlink constants message.go builds requests with (from the
// kernel's uapi headers) and the header flags of those requests.

import (
	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
)

// include/uapi/linux/netfilter/nfnetlink.h:
//
//	struct nfgenmsg {
//		__u8  nfgen_family;		/* AF_xxx */
//		__u8  version;		/* nfnetlink version */
//		__be16    res_id;		/* resource id */
//	};
//
//	#define NFNETLINK_V0	0
//	#define NFNL_SUBSYS_CTNETLINK		1
const (
	nfgenmsgLen         = 4
	nfnetlinkV0         = 0
	nfnlSubsysCTNetlink = 1
)

// Address families in nfgen_family (include/linux/socket.h, Linux values;
// AF_INET6 differs on the BSDs).
const (
	afUnspec = 0
	afInet   = 2
	afInet6  = 10
)

// include/uapi/linux/netfilter/nfnetlink_conntrack.h:
//
//	enum cntl_msg_types {
//		IPCTNL_MSG_CT_NEW,
//		IPCTNL_MSG_CT_GET,
//		IPCTNL_MSG_CT_DELETE,
//		...
//	};
const (
	ipctnlMsgCTNew    = 0
	ipctnlMsgCTGet    = 1
	ipctnlMsgCTDelete = 2
)

// include/uapi/linux/netfilter/nfnetlink_conntrack.h:
//
//	enum ctattr_type {
//		CTA_UNSPEC,
//		CTA_TUPLE_ORIG,
//		CTA_TUPLE_REPLY,
//		CTA_STATUS,
//		CTA_PROTOINFO,
//		CTA_HELP,
//		CTA_NAT_SRC,
//	#define CTA_NAT	CTA_NAT_SRC	/* backwards compatibility */
//		CTA_TIMEOUT,
//		CTA_MARK,
//		CTA_COUNTERS_ORIG,
//		CTA_COUNTERS_REPLY,
//		CTA_USE,
//		CTA_ID,
//		CTA_NAT_DST,
//		CTA_TUPLE_MASTER,
//		CTA_SEQ_ADJ_ORIG,
//		CTA_NAT_SEQ_ADJ_ORIG	= CTA_SEQ_ADJ_ORIG,
//		CTA_SEQ_ADJ_REPLY,
//		CTA_NAT_SEQ_ADJ_REPLY	= CTA_SEQ_ADJ_REPLY,
//		CTA_SECMARK,		/* obsolete */
//		CTA_ZONE,
//		...
//	};
const (
	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaStatus     = 3
	ctaProtoinfo  = 4
	ctaNATSrc     = 6
	ctaTimeout    = 7
	ctaMark       = 8
	ctaID         = 12
	ctaNATDst     = 13
	ctaZone       = 18
)

// include/uapi/linux/netfilter/nfnetlink_conntrack.h:
//
//	enum ctattr_tuple {
//		CTA_TUPLE_UNSPEC,
//		CTA_TUPLE_IP,
//		CTA_TUPLE_PROTO,
//		CTA_TUPLE_ZONE,
//		__CTA_TUPLE_MAX
//	};
//
//	enum ctattr_ip {
//		CTA_IP_UNSPEC,
//		CTA_IP_V4_SRC,
//		CTA_IP_V4_DST,
//		CTA_IP_V6_SRC,
//		CTA_IP_V6_DST,
//		__CTA_IP_MAX
//	};
//
//	enum ctattr_l4proto {
//		CTA_PROTO_UNSPEC,
//		CTA_PROTO_NUM,
//		CTA_PROTO_SRC_PORT,
//		CTA_PROTO_DST_PORT,
//		CTA_PROTO_ICMP_ID,
//		CTA_PROTO_ICMP_TYPE,
//		CTA_PROTO_ICMP_CODE,
//		CTA_PROTO_ICMPV6_ID,
//		CTA_PROTO_ICMPV6_TYPE,
//		CTA_PROTO_ICMPV6_CODE,
//		__CTA_PROTO_MAX
//	};
const (
	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum        = 1
	ctaProtoSrcPort    = 2
	ctaProtoDstPort    = 3
	ctaProtoICMPID     = 4
	ctaProtoICMPType   = 5
	ctaProtoICMPCode   = 6
	ctaProtoICMPv6ID   = 7
	ctaProtoICMPv6Type = 8
	ctaProtoICMPv6Code = 9
)

// include/uapi/linux/netfilter/nfnetlink_conntrack.h:
//
//	enum ctattr_protoinfo {
//		CTA_PROTOINFO_UNSPEC,
//		CTA_PROTOINFO_TCP,
//		CTA_PROTOINFO_DCCP,
//		CTA_PROTOINFO_SCTP,
//		__CTA_PROTOINFO_MAX
//	};
//
//	enum ctattr_protoinfo_tcp {
//		CTA_PROTOINFO_TCP_UNSPEC,
//		CTA_PROTOINFO_TCP_STATE,
//		CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
//		CTA_PROTOINFO_TCP_WSCALE_REPLY,
//		CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
//		CTA_PROTOINFO_TCP_FLAGS_REPLY,
//		__CTA_PROTOINFO_TCP_MAX
//	};
//
// The two FLAGS attributes carry, from nf_conntrack_tcp.h,
//
//	struct nf_ct_tcp_flags {
//		__u8 flags;
//		__u8 mask;
//	};
//
// and the kernel does seen[dir].flags = (flags & ~mask) | (flags & mask):
// only the bits in mask change.
const (
	ctaProtoinfoTCP = 1

	ctaProtoinfoTCPState       = 1
	ctaProtoinfoTCPWScaleOrig  = 2
	ctaProtoinfoTCPWScaleReply = 3
	ctaProtoinfoTCPFlagsOrig   = 4
	ctaProtoinfoTCPFlagsReply  = 5
)

// include/uapi/linux/netfilter/nfnetlink_conntrack.h:
//
//	enum ctattr_nat {
//		CTA_NAT_UNSPEC,
//		CTA_NAT_V4_MINIP,
//	#define CTA_NAT_MINIP CTA_NAT_V4_MINIP
//		CTA_NAT_V4_MAXIP,
//	#define CTA_NAT_MAXIP CTA_NAT_V4_MAXIP
//		CTA_NAT_PROTO,
//		CTA_NAT_V6_MINIP,
//		CTA_NAT_V6_MAXIP,
//		__CTA_NAT_MAX
//	};
//
//	enum ctattr_protonat {
//		CTA_PROTONAT_UNSPEC,
//		CTA_PROTONAT_PORT_MIN,
//		CTA_PROTONAT_PORT_MAX,
//		__CTA_PROTONAT_MAX
//	};
//
// CTA_PROTONAT_PORT_* are __be16; for ICMP they hold the echo id, which is
// what the kernel's NAT rewrites for ICMP (nf_nat_l4proto_unique_tuple).
const (
	ctaNATV4MinIP = 1
	ctaNATV4MaxIP = 2
	ctaNATProto   = 3
	ctaNATV6MinIP = 4
	ctaNATV6MaxIP = 5

	ctaProtoNATPortMin = 1
	ctaProtoNATPortMax = 2
)

// settableStatus are the status bits a sync carries into CTA_STATUS; the
// kernel refuses to flip EXPECTED, CONFIRMED and DYING and ignores the NAT,
// NAT_DONE, SEQ_ADJUST and OFFLOAD bits (docs/sync-protocol.md#what-ctnetlink-requires).
const settableStatus = flow.StatusSeenReply | flow.StatusAssured

// injectedTCPFlags are the IP_CT_TCP_FLAG_* bits copied from the primary:
// negotiated in the handshake, which the backup never sees; the kernel
// ignores the window scale unless WINDOW_SCALE is set both ways.
const injectedTCPFlags = flow.TCPFlagWindowScale | flow.TCPFlagSACKPerm

// Header flags of the requests.
const (
	flagsCreate = nl.Request | nl.Acknowledge | nl.Create | nl.Excl
	flagsUpdate = nl.Request | nl.Acknowledge
	flagsDelete = nl.Request | nl.Acknowledge
	// A CT_GET without NLM_F_ACK is answered by exactly one message: the
	// entry or an error.
	flagsGet  = nl.Request
	flagsDump = nl.Request | nl.Dump
)
