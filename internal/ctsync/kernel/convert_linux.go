package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
)

// This file decodes the ctnetlink messages the kernel sends (events, dump
// parts, CT_GET answers) into the sync model. It reads only what the model
// keeps and checks what it reads as strictly as ti-mo/conntrack, which did
// this before (its test-only differential fuzz target, FuzzParseMessage,
// holds the two to the same result): the nests it reads must carry
// NLA_F_NESTED, a tuple needs its IP and protocol nests and nothing
// unknown, an IP nest exactly a source and a destination of 4 or 16
// bytes, every number its exact width. The per-direction zones of the
// tuples (CTA_TUPLE_ZONE) have no place in the model and are dropped; so
// are counters, helpers, labels, timestamps and the SCTP and DCCP
// protoinfo, which are skipped unread.

// nlaFByteorder is NLA_F_NET_BYTEORDER, the other flag bit of nla_type.
const nlaFByteorder = 1 << 14

// CTA_* attributes that are checked but not kept.
const (
	ctaUse          = 11
	ctaTupleZone    = 3
	ctaProtoinfoMax = 3 // CTA_PROTOINFO_SCTP
)

var (
	errAttr        = errors.New("malformed netlink attribute")
	errNotNested   = errors.New("nest without NLA_F_NESTED")
	errTupleShort  = errors.New("tuple without its IP and protocol nests")
	errIPTuple     = errors.New("IP tuple is not a source and a destination")
	errAddrLen     = errors.New("address is neither 4 nor 16 bytes")
	errEmptyNest   = errors.New("empty nest")
	errProtoinfo   = errors.New("CTA_PROTOINFO twice or not one nest")
	errUnknownAttr = errors.New("unknown attribute")
)

// attrIter walks the netlink attributes of b, as nl.AttributeDecoder
// does but without copying each payload: a zero nla_len is an attribute
// without payload that advances by one header, an nla_len of 1 to 3 or
// past the end is an error, and the last attribute's padding may be
// missing.
type attrIter struct {
	b      []byte
	len    int    // nla_len
	typ    uint16 // nla_type without the flag bits
	nested bool
	data   []byte
	err    error
}

func (it *attrIter) next() bool {
	if it.err != nil || len(it.b) == 0 {
		return false
	}
	if len(it.b) < nlaHeaderLen {
		it.err = errAttr
		return false
	}
	l := int(binary.NativeEndian.Uint16(it.b))
	t := binary.NativeEndian.Uint16(it.b[2:])
	if l > len(it.b) || l != 0 && l < nlaHeaderLen {
		it.err = errAttr
		return false
	}
	it.len = l
	it.typ = t &^ (nlaFNested | nlaFByteorder)
	it.nested = t&nlaFNested != 0
	it.data = it.b[nlaHeaderLen:max(l, nlaHeaderLen)]
	it.b = it.b[min((max(l, nlaHeaderLen)+3)&^3, len(it.b)):]
	return true
}

// count returns the number of attributes with a non-zero nla_len in b
// (nl.AttributeDecoder's Len) or the error the walk meets.
func count(b []byte) (int, error) {
	n := 0
	it := attrIter{b: b}
	for it.next() {
		if it.len != 0 {
			n++
		}
	}
	return n, it.err
}

func (it *attrIter) u8() uint8 {
	if len(it.data) != 1 {
		it.fail()
		return 0
	}
	return it.data[0]
}

func (it *attrIter) be16() uint16 {
	if len(it.data) != 2 {
		it.fail()
		return 0
	}
	return binary.BigEndian.Uint16(it.data)
}

func (it *attrIter) be32() uint32 {
	if len(it.data) != 4 {
		it.fail()
		return 0
	}
	return binary.BigEndian.Uint32(it.data)
}

func (it *attrIter) fail() {
	if it.err == nil {
		it.err = fmt.Errorf("attribute %d: payload of %d bytes: %w", it.typ, len(it.data), errAttr)
	}
	it.b = nil
}

// parseMessage parses a ctnetlink message carrying one entry: an event, a
// dump part or the answer to a CT_GET. It returns the event type (NEW for
// NLM_F_CREATE or NLM_F_EXCL, UPDATE for other IPCTNL_MSG_CT_NEW, DESTROY
// for IPCTNL_MSG_CT_DELETE), the flow and the entry's CTA_ID.
func parseMessage(m nl.Message) (flow.EventType, flow.Flow, uint32, error) {
	typ, f, id, err := decodeMessage(m)
	if err != nil {
		return 0, flow.Flow{}, 0, fmt.Errorf("kernel: parse conntrack message: %w", err)
	}
	return typ, f, id, nil
}

func decodeMessage(m nl.Message) (flow.EventType, flow.Flow, uint32, error) {
	var f flow.Flow
	if len(m.Data) < nfgenmsgLen {
		return 0, f, 0, errors.New("shorter than struct nfgenmsg")
	}
	if uint16(m.Header.Type)>>8 != nfnlSubsysCTNetlink {
		return 0, f, 0, fmt.Errorf("type %#x is not a flow", uint16(m.Header.Type))
	}
	var typ flow.EventType
	switch uint8(m.Header.Type) {
	case ipctnlMsgCTNew:
		typ = flow.EventUpdate
		if m.Header.Flags&(nl.Create|nl.Excl) != 0 {
			typ = flow.EventNew
		}
	case ipctnlMsgCTDelete:
		typ = flow.EventDestroy
	default:
		return 0, f, 0, fmt.Errorf("message type %d is not an event", uint8(m.Header.Type))
	}
	var id uint32
	var orig, reply ctTuple
	protoinfo := false
	it := attrIter{b: m.Data[nfgenmsgLen:]}
	for it.next() {
		var err error
		switch it.typ {
		case ctaTupleOrig, ctaTupleReply, ctaProtoinfo:
			if !it.nested {
				return 0, flow.Flow{}, 0, fmt.Errorf("attribute %d: %w", it.typ, errNotNested)
			}
		}
		switch it.typ {
		case ctaTupleOrig:
			err = orig.decode(it.data)
		case ctaTupleReply:
			err = reply.decode(it.data)
		case ctaProtoinfo:
			if protoinfo {
				err = errProtoinfo
				break
			}
			protoinfo = true
			err = decodeProtoinfo(it.data, &f)
		case ctaStatus:
			f.Status = it.be32()
		case ctaTimeout:
			f.Timeout = it.be32()
		case ctaMark:
			f.Mark = it.be32()
		case ctaID:
			id = it.be32()
		case ctaUse:
			it.be32()
		case ctaZone:
			f.Zone = it.be16()
		}
		if err != nil {
			return 0, flow.Flow{}, 0, fmt.Errorf("attribute %d: %w", it.typ, err)
		}
	}
	if it.err != nil {
		return 0, flow.Flow{}, 0, it.err
	}
	f.Orig, f.Reply = orig.flow(), reply.flow()
	return typ, f, id, nil
}

// ctTuple is a CTA_TUPLE_ORIG or _REPLY as sent: a later IP or protocol
// nest replaces what an earlier one set.
type ctTuple struct {
	src, dst           netip.Addr
	proto              uint8
	sport, dport, icmp uint16
	icmpType, icmpCode uint8
}

// flow converts the tuple to package flow's: ICMP's id goes to SrcPort and
// its type and code to DstPort, as package flow keys them.
func (t *ctTuple) flow() flow.Tuple {
	out := flow.Tuple{Src: t.src, Dst: t.dst, Proto: t.proto, SrcPort: t.sport, DstPort: t.dport}
	switch t.proto {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		out.SrcPort = t.icmp
		out.DstPort = uint16(t.icmpType)<<8 | uint16(t.icmpCode)
	}
	return out
}

// decode decodes the nests of a tuple: at least two attributes, all of
// them CTA_TUPLE_IP, _PROTO or _ZONE.
func (t *ctTuple) decode(b []byte) error {
	if n, err := count(b); err != nil {
		return err
	} else if n < 2 {
		return errTupleShort
	}
	it := attrIter{b: b}
	for it.next() {
		var err error
		switch it.typ {
		case ctaTupleIP:
			err = t.decodeIP(it.data)
		case ctaTupleProto:
			err = t.decodeProto(it.data)
		case ctaTupleZone:
			it.be16()
		default:
			err = fmt.Errorf("tuple attribute %d: %w", it.typ, errUnknownAttr)
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

// decodeProto decodes CTA_TUPLE_PROTO: at least one attribute, none
// unknown.
func (t *ctTuple) decodeProto(b []byte) error {
	if n, err := count(b); err != nil {
		return err
	} else if n == 0 {
		return errEmptyNest
	}
	t.proto, t.sport, t.dport, t.icmp, t.icmpType, t.icmpCode = 0, 0, 0, 0, 0, 0
	it := attrIter{b: b}
	for it.next() {
		switch it.typ {
		case ctaProtoNum:
			t.proto = it.u8()
		case ctaProtoSrcPort:
			t.sport = it.be16()
		case ctaProtoDstPort:
			t.dport = it.be16()
		case ctaProtoICMPID, ctaProtoICMPv6ID:
			t.icmp = it.be16()
		case ctaProtoICMPType, ctaProtoICMPv6Type:
			t.icmpType = it.u8()
		case ctaProtoICMPCode, ctaProtoICMPv6Code:
			t.icmpCode = it.u8()
		default:
			it.err = fmt.Errorf("protocol attribute %d: %w", it.typ, errUnknownAttr)
		}
	}
	return it.err
}

// decodeIP decodes CTA_TUPLE_IP: exactly a source and a destination,
// IPv4-mapped IPv6 addresses unmapped.
func (t *ctTuple) decodeIP(b []byte) error {
	if n, err := count(b); err != nil {
		return err
	} else if n != 2 {
		return errIPTuple
	}
	t.src, t.dst = netip.Addr{}, netip.Addr{}
	it := attrIter{b: b}
	for it.next() {
		a, ok := netip.AddrFromSlice(it.data)
		if !ok {
			return errAddrLen
		}
		switch it.typ {
		case ctaIPv4Src, ctaIPv6Src:
			t.src = a.Unmap()
		case ctaIPv4Dst, ctaIPv6Dst:
			t.dst = a.Unmap()
		default:
			return fmt.Errorf("IP attribute %d: %w", it.typ, errUnknownAttr)
		}
	}
	return it.err
}

// decodeProtoinfo decodes CTA_PROTOINFO: one nest, of which only TCP's is
// kept (the flags attributes are struct nf_ct_tcp_flags, flags first).
func decodeProtoinfo(b []byte, f *flow.Flow) error {
	if n, err := count(b); err != nil {
		return err
	} else if n != 1 {
		return errProtoinfo
	}
	it := attrIter{b: b}
	if !it.next() {
		return it.err
	}
	if it.typ == 0 || it.typ > ctaProtoinfoMax {
		return fmt.Errorf("protoinfo attribute %d: %w", it.typ, errUnknownAttr)
	}
	if n, err := count(it.data); err != nil {
		return err
	} else if it.typ != ctaProtoinfoTCP {
		return nil
	} else if n == 0 {
		return errEmptyNest
	}
	tcp := attrIter{b: it.data}
	for tcp.next() {
		switch tcp.typ {
		case ctaProtoinfoTCPState:
			f.TCPState = tcp.u8()
		case ctaProtoinfoTCPWScaleOrig:
			f.TCPWScaleOrig = tcp.u8()
		case ctaProtoinfoTCPWScaleReply:
			f.TCPWScaleReply = tcp.u8()
		case ctaProtoinfoTCPFlagsOrig:
			f.TCPFlagsOrig = uint8(tcp.be16() >> 8)
		case ctaProtoinfoTCPFlagsReply:
			f.TCPFlagsReply = uint8(tcp.be16() >> 8)
		default:
			tcp.err = fmt.Errorf("TCP protoinfo attribute %d: %w", tcp.typ, errUnknownAttr)
		}
	}
	return tcp.err
}
