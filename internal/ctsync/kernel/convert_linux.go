package kernel

import (
	"fmt"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// fromCT converts a flow parsed by ti-mo/conntrack to the sync model. The
// per-direction zones of the tuples (CTA_TUPLE_ZONE) have no place in the
// model and are dropped; so are counters, helpers, labels and the SCTP and
// DCCP protoinfo.
func fromCT(cf *conntrack.Flow) flow.Flow {
	f := flow.Flow{
		Orig:    fromCTTuple(cf.TupleOrig),
		Reply:   fromCTTuple(cf.TupleReply),
		Zone:    cf.Zone,
		Mark:    cf.Mark,
		Status:  uint32(cf.Status),
		Timeout: cf.Timeout,
	}
	if tcp := cf.ProtoInfo.TCP; tcp != nil {
		f.TCPState = tcp.State
		f.TCPWScaleOrig = tcp.OriginalWindowScale
		f.TCPWScaleReply = tcp.ReplyWindowScale
		// u16 = struct nf_ct_tcp_flags {flags, mask} in network order.
		f.TCPFlagsOrig = uint8(tcp.OriginalFlags >> 8)
		f.TCPFlagsReply = uint8(tcp.ReplyFlags >> 8)
	}
	return f
}

// fromCTTuple converts one tuple; ICMP's id goes to SrcPort and its type
// and code to DstPort, as package flow keys them.
func fromCTTuple(t conntrack.Tuple) flow.Tuple {
	out := flow.Tuple{
		Src:   t.IP.SourceAddress.Unmap(),
		Dst:   t.IP.DestinationAddress.Unmap(),
		Proto: t.Proto.Protocol,
	}
	switch t.Proto.Protocol {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		out.SrcPort = t.Proto.ICMPID
		out.DstPort = uint16(t.Proto.ICMPType)<<8 | uint16(t.Proto.ICMPCode)
	default:
		out.SrcPort = t.Proto.SourcePort
		out.DstPort = t.Proto.DestinationPort
	}
	return out
}

// parseMessage parses a ctnetlink message carrying one entry: an event, a
// dump part or the answer to a CT_GET. It returns the event type (NEW for
// NLM_F_CREATE|NLM_F_EXCL, UPDATE for other IPCTNL_MSG_CT_NEW, DESTROY for
// IPCTNL_MSG_CT_DELETE), the flow and the entry's CTA_ID.
func parseMessage(m netlink.Message) (flow.EventType, flow.Flow, uint32, error) {
	var ev conntrack.Event
	if err := ev.Unmarshal(m); err != nil {
		return 0, flow.Flow{}, 0, fmt.Errorf("kernel: parse conntrack message: %w", err)
	}
	if ev.Flow == nil {
		return 0, flow.Flow{}, 0, fmt.Errorf("kernel: parse conntrack message: type %#x is not a flow", uint16(m.Header.Type))
	}
	var typ flow.EventType
	switch ev.Type {
	case conntrack.EventNew:
		typ = flow.EventNew
	case conntrack.EventUpdate:
		typ = flow.EventUpdate
	case conntrack.EventDestroy:
		typ = flow.EventDestroy
	default:
		return 0, flow.Flow{}, 0, fmt.Errorf("kernel: parse conntrack message: event type %d", ev.Type)
	}
	return typ, fromCT(ev.Flow), ev.Flow.ID, nil
}
