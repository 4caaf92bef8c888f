package kernel

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
)

// This file builds the ctnetlink requests of the writer (Apply, Inject,
// Delete); the constants are in ctnetlink.go. It is pure: no sockets, so
// its output is tested by decoding it with internal/nl's
// AttributeDecoder (message_test.go). ti-mo/conntrack cannot marshal
// CTA_NAT_SRC/CTA_NAT_DST (docs/sync-protocol.md#what-ctnetlink-requires),
// and the binary no longer links it (docs/size-budget.md); an append-only
// encoder (attrs) also keeps a create to one allocation, which matters at
// tens of thousands per second.

// ctHeaderType is the netlink message type of a ctnetlink message.
func ctHeaderType(msg uint8) nl.HeaderType {
	return nl.HeaderType(nfnlSubsysCTNetlink<<8 | uint16(msg))
}

// family returns the nfgen_family of a tuple.
func family(t flow.Tuple) uint8 {
	if t.Src.Is4() {
		return afInet
	}
	return afInet6
}

// attrs appends netlink attributes to a message body, without an
// allocation per attribute (the writer builds one message per flow). From
// include/uapi/linux/netlink.h:
//
//	struct nlattr {
//		__u16           nla_len;
//		__u16           nla_type;
//	};
//
//	#define NLA_F_NESTED		(1 << 15)
//	#define NLA_ALIGNTO		4
//
// nla_len counts the 4-byte header and the payload, not the padding that
// aligns the next attribute; both header fields are in host byte order,
// the payloads of netfilter attributes in network byte order.
type attrs struct {
	b []byte
}

const (
	nlaHeaderLen = 4
	nlaFNested   = 1 << 15
)

// put appends an attribute with the given payload.
func (a *attrs) put(typ uint16, payload ...byte) {
	l := nlaHeaderLen + len(payload)
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(l))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, payload...)
	a.pad()
}

// pad aligns the end of the body to NLA_ALIGNTO.
func (a *attrs) pad() {
	for len(a.b)%4 != 0 {
		a.b = append(a.b, 0)
	}
}

func (a *attrs) u8(typ uint16, v uint8) { a.put(typ, v) }

func (a *attrs) be16(typ uint16, v uint16) { a.put(typ, byte(v>>8), byte(v)) }

func (a *attrs) be32(typ uint16, v uint32) {
	a.put(typ, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// addr appends an address attribute: 4 or 16 bytes.
func (a *attrs) addr(typ uint16, ip netip.Addr) {
	if ip.Is4() {
		b := ip.As4()
		a.put(typ, b[:]...)
		return
	}
	b := ip.As16()
	a.put(typ, b[:]...)
}

// nest starts a nested attribute; end(nest(...)) closes it.
func (a *attrs) nest(typ uint16) int {
	off := len(a.b)
	a.b = binary.NativeEndian.AppendUint16(a.b, 0)
	a.b = binary.NativeEndian.AppendUint16(a.b, typ|nlaFNested)
	return off
}

// end sets the length of the nested attribute started at off.
func (a *attrs) end(off int) {
	binary.NativeEndian.PutUint16(a.b[off:], uint16(len(a.b)-off))
}

// newAttrs returns a body that starts with the nfgenmsg of family fam.
func newAttrs(fam uint8) *attrs {
	b := make([]byte, nfgenmsgLen, 256)
	b[0] = fam
	b[1] = nfnetlinkV0
	// res_id (b[2:4]) stays 0.
	return &attrs{b: b}
}

// message frames the body as a ctnetlink request.
func (a *attrs) message(msg uint8, flags nl.HeaderFlags) nl.Message {
	return nl.Message{
		Header: nl.Header{Type: ctHeaderType(msg), Flags: flags},
		Data:   a.b,
	}
}

// encodeTuple appends t as the nested tuple attribute typ.
func encodeTuple(a *attrs, typ uint16, t flow.Tuple) {
	tu := a.nest(typ)
	ip := a.nest(ctaTupleIP)
	if t.Src.Is4() {
		a.addr(ctaIPv4Src, t.Src)
		a.addr(ctaIPv4Dst, t.Dst)
	} else {
		a.addr(ctaIPv6Src, t.Src)
		a.addr(ctaIPv6Dst, t.Dst)
	}
	a.end(ip)
	proto := a.nest(ctaTupleProto)
	a.u8(ctaProtoNum, t.Proto)
	switch t.Proto {
	case flow.ProtoICMP:
		a.u8(ctaProtoICMPType, uint8(t.DstPort>>8))
		a.u8(ctaProtoICMPCode, uint8(t.DstPort))
		a.be16(ctaProtoICMPID, t.SrcPort)
	case flow.ProtoICMPv6:
		a.u8(ctaProtoICMPv6Type, uint8(t.DstPort>>8))
		a.u8(ctaProtoICMPv6Code, uint8(t.DstPort))
		a.be16(ctaProtoICMPv6ID, t.SrcPort)
	default:
		a.be16(ctaProtoSrcPort, t.SrcPort)
		a.be16(ctaProtoDstPort, t.DstPort)
	}
	a.end(proto)
	a.end(tu)
}

// icmpReplyType returns the type of the answer to an ICMP or ICMPv6 query
// of type typ, as the kernel's invmap tables in nf_conntrack_proto_icmp.c
// and nf_conntrack_proto_icmpv6.c: echo, timestamp, info and address mask
// requests and replies; ICMPv6 echo and node information.
func icmpReplyType(proto, typ uint8) (uint8, bool) {
	pairs := [][2]uint8{{8, 0}, {13, 14}, {15, 16}, {17, 18}} // ICMP
	if proto == flow.ProtoICMPv6 {
		pairs = [][2]uint8{{128, 129}, {139, 140}}
	}
	for _, p := range pairs {
		switch typ {
		case p[0]:
			return p[1], true
		case p[1]:
			return p[0], true
		}
	}
	return 0, false
}

// plainReply returns the reply tuple of orig without NAT: what a create
// must carry in CTA_TUPLE_REPLY (docs/sync-protocol.md#what-ctnetlink-requires). For ICMP the id stays and
// the type is the answer's.
func plainReply(orig flow.Tuple) (flow.Tuple, error) {
	switch orig.Proto {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		typ, ok := icmpReplyType(orig.Proto, uint8(orig.DstPort>>8))
		if !ok {
			return flow.Tuple{}, fmt.Errorf("%w: %d", errICMPType, orig.DstPort>>8)
		}
		return flow.Tuple{
			Src: orig.Dst, Dst: orig.Src, Proto: orig.Proto,
			SrcPort: orig.SrcPort, DstPort: uint16(typ)<<8 | orig.DstPort&0xff,
		}, nil
	}
	return orig.Inverse(), nil
}

// natRange is one CTA_NAT_SRC or CTA_NAT_DST: the single address (and
// port, or ICMP id) a manip maps to.
type natRange struct {
	Addr    netip.Addr
	Port    uint16
	HasPort bool
}

// natOf derives the NAT ranges that make the kernel compute f.Reply from
// the plain reply tuple. For ports it is flow.Flow.SNAT and DNAT; ICMP
// keeps its id in Reply.SrcPort in both manips, so it is handled here: the
// id is pinned whenever there is NAT, else the kernel might pick another
// id for a mapping already in use.
func natOf(f *flow.Flow) (src, dst natRange, hasSrc, hasDst bool) {
	switch f.Orig.Proto {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		hasSrc = f.Reply.Dst != f.Orig.Src
		hasDst = f.Reply.Src != f.Orig.Dst
		idChanged := f.Reply.SrcPort != f.Orig.SrcPort
		if idChanged && !hasSrc && !hasDst {
			hasSrc = true // an id-only SNAT
		}
		src = natRange{Addr: f.Reply.Dst}
		dst = natRange{Addr: f.Reply.Src}
		if hasSrc {
			src.Port, src.HasPort = f.Reply.SrcPort, true
		} else if hasDst {
			dst.Port, dst.HasPort = f.Reply.SrcPort, true
		}
		return src, dst, hasSrc, hasDst
	}
	if a, p, ok := f.SNAT(); ok {
		src, hasSrc = natRange{Addr: a, Port: p, HasPort: true}, true
	}
	if a, p, ok := f.DNAT(); ok {
		dst, hasDst = natRange{Addr: a, Port: p, HasPort: true}, true
	}
	return src, dst, hasSrc, hasDst
}

// encodeNAT appends r as the nested CTA_NAT_SRC or CTA_NAT_DST typ.
func encodeNAT(a *attrs, typ uint16, r natRange) {
	nat := a.nest(typ)
	if r.Addr.Is4() {
		a.addr(ctaNATV4MinIP, r.Addr)
		a.addr(ctaNATV4MaxIP, r.Addr)
	} else {
		a.addr(ctaNATV6MinIP, r.Addr)
		a.addr(ctaNATV6MaxIP, r.Addr)
	}
	if r.HasPort {
		proto := a.nest(ctaNATProto)
		a.be16(ctaProtoNATPortMin, r.Port)
		a.be16(ctaProtoNATPortMax, r.Port)
		a.end(proto)
	}
	a.end(nat)
}

// encodeTCP appends the TCP protoinfo of f: state, window scales, and the
// flags of each direction with BE_LIBERAL set (flags and mask both 0x08,
// plus the handshake bits of injectedTCPFlags the primary saw), so the
// backup does not mark mid-stream packets INVALID (docs/sync-protocol.md#what-ctnetlink-requires).
func encodeTCP(a *attrs, f *flow.Flow) {
	info := a.nest(ctaProtoinfo)
	tcp := a.nest(ctaProtoinfoTCP)
	a.u8(ctaProtoinfoTCPState, f.TCPState)
	a.u8(ctaProtoinfoTCPWScaleOrig, f.TCPWScaleOrig)
	a.u8(ctaProtoinfoTCPWScaleReply, f.TCPWScaleReply)
	orig := f.TCPFlagsOrig&injectedTCPFlags | flow.TCPFlagBeLiberal
	reply := f.TCPFlagsReply&injectedTCPFlags | flow.TCPFlagBeLiberal
	a.put(ctaProtoinfoTCPFlagsOrig, orig, orig)
	a.put(ctaProtoinfoTCPFlagsReply, reply, reply)
	a.end(tcp)
	a.end(info)
}

// checkFlow is what every flow must pass before it is written.
func checkFlow(f *flow.Flow) error {
	if err := f.Valid(); err != nil {
		return err
	}
	if f.Orig.Src.Is4In6() {
		// Defence in depth: flow.Valid refuses these already; the kernel
		// would make an IPv6 entry of it that no packet matches.
		return fmt.Errorf("%w: %v", errMappedAddr, f.Orig.Src)
	}
	if f.Timeout == 0 {
		return errNoTimeout
	}
	return nil
}

// createMessage builds the IPCTNL_MSG_CT_NEW request (NLM_F_CREATE |
// NLM_F_EXCL) that creates f: the original tuple, the un-NATed reply tuple
// with CTA_NAT_SRC/CTA_NAT_DST from which the kernel computes f.Reply, the
// status with IPS_CONFIRMED, timeout, mark, zone, and for TCP the
// protoinfo.
func createMessage(f *flow.Flow) (nl.Message, error) {
	if err := checkFlow(f); err != nil {
		return nl.Message{}, err
	}
	reply, err := plainReply(f.Orig)
	if err != nil {
		return nl.Message{}, err
	}
	a := newAttrs(family(f.Orig))
	encodeTuple(a, ctaTupleOrig, f.Orig)
	encodeTuple(a, ctaTupleReply, reply)
	// The kernel sets up the DST manip first, then SRC
	// (ctnetlink_setup_nat); the order of the attributes does not matter.
	src, dst, hasSrc, hasDst := natOf(f)
	if hasSrc {
		encodeNAT(a, ctaNATSrc, src)
	}
	if hasDst {
		encodeNAT(a, ctaNATDst, dst)
	}
	encodeCommon(a, f, flow.StatusConfirmed|f.Status&settableStatus)
	return a.message(ipctnlMsgCTNew, flagsCreate), nil
}

// updateMessage builds the IPCTNL_MSG_CT_NEW request without NLM_F_CREATE
// that updates the entry with f's original tuple and zone: timeout,
// status, mark and TCP protoinfo. Never NAT, which the kernel refuses to
// change (EOPNOTSUPP). status must hold every bit the entry has, as
// the kernel clears the changeable bits missing and refuses (EBUSY) to
// clear CONFIRMED, SEEN_REPLY and ASSURED.
func updateMessage(f *flow.Flow, status uint32) (nl.Message, error) {
	if err := checkFlow(f); err != nil {
		return nl.Message{}, err
	}
	a := newAttrs(family(f.Orig))
	encodeTuple(a, ctaTupleOrig, f.Orig)
	encodeCommon(a, f, status|flow.StatusConfirmed|f.Status&settableStatus)
	return a.message(ipctnlMsgCTNew, flagsUpdate), nil
}

// encodeCommon appends status, timeout, mark, zone and TCP protoinfo.
func encodeCommon(a *attrs, f *flow.Flow, status uint32) {
	a.be32(ctaStatus, status)
	a.be32(ctaTimeout, f.Timeout)
	a.be32(ctaMark, f.Mark)
	if f.Zone != 0 {
		a.be16(ctaZone, f.Zone)
	}
	if f.Orig.Proto == flow.ProtoTCP {
		encodeTCP(a, f)
	}
}

// lookup names one entry: by its original tuple, or by its reply tuple as
// the kernel has it (NAT applied), in a zone; ID, if not zero, must match
// the entry's CTA_ID.
type lookup struct {
	Tuple flow.Tuple
	Reply bool
	Zone  uint16
	ID    uint32
}

// encode appends the lookup's attributes.
func (l lookup) encode(a *attrs) {
	typ := uint16(ctaTupleOrig)
	if l.Reply {
		typ = ctaTupleReply
	}
	encodeTuple(a, typ, l.Tuple)
	if l.Zone != 0 {
		a.be16(ctaZone, l.Zone)
	}
	if l.ID != 0 {
		a.be32(ctaID, l.ID)
	}
}

// check validates the tuple: a lookup without one would address the
// whole table.
func (l lookup) check() error {
	t := l.Tuple
	if !t.Src.IsValid() || !t.Dst.IsValid() || t.Src.Is4() != t.Dst.Is4() || t.Proto == 0 {
		return fmt.Errorf("%w: %v", errNoTuple, t)
	}
	return nil
}

// getMessage builds the IPCTNL_MSG_CT_GET request for one entry.
func getMessage(l lookup) (nl.Message, error) {
	if err := l.check(); err != nil {
		return nl.Message{}, err
	}
	a := newAttrs(family(l.Tuple))
	l.encode(a)
	return a.message(ipctnlMsgCTGet, flagsGet), nil
}

// deleteMessage builds the IPCTNL_MSG_CT_DELETE request for one entry.
func deleteMessage(l lookup) (nl.Message, error) {
	if err := l.check(); err != nil {
		return nl.Message{}, err
	}
	a := newAttrs(family(l.Tuple))
	l.encode(a)
	return a.message(ipctnlMsgCTDelete, flagsDelete), nil
}

// dumpMessage builds the IPCTNL_MSG_CT_GET dump request for the whole
// table: both families (AF_UNSPEC), all zones.
func dumpMessage() nl.Message {
	return newAttrs(afUnspec).message(ipctnlMsgCTGet, flagsDump)
}
