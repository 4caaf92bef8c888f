// Package nl is the small part of netlink carpd speaks: messages, their
// attributes, and (on Linux) a socket on the runtime's netpoller, so that
// deadlines and Close interrupt a blocked read. It replaces
// github.com/mdlayher/netlink and github.com/mdlayher/socket, whose names
// it keeps for what carpd used of them (Dial, Config, Conn.Execute,
// Message, Header and the flag constants), at a fraction of the binary
// size (docs/size-budget.md).
package nl

import (
	"encoding/binary"
	"errors"
)

// HeaderType is nlmsg_type: a protocol's message type or one of the
// control types below.
type HeaderType uint16

// The control message types of include/uapi/linux/netlink.h.
const (
	Noop    HeaderType = 0x1 // NLMSG_NOOP
	Error   HeaderType = 0x2 // NLMSG_ERROR: an errno, 0 for an ack
	Done    HeaderType = 0x3 // NLMSG_DONE: the end of a dump
	Overrun HeaderType = 0x4 // NLMSG_OVERRUN
)

// HeaderFlags is nlmsg_flags.
type HeaderFlags uint16

// Flags of include/uapi/linux/netlink.h. The get and new request flags
// share bits.
const (
	Request         HeaderFlags = 0x01 // NLM_F_REQUEST
	Multi           HeaderFlags = 0x02 // NLM_F_MULTI: part of a multipart reply
	Acknowledge     HeaderFlags = 0x04 // NLM_F_ACK
	Echo            HeaderFlags = 0x08 // NLM_F_ECHO
	DumpInterrupted HeaderFlags = 0x10 // NLM_F_DUMP_INTR: the dump was inconsistent
	DumpFiltered    HeaderFlags = 0x20 // NLM_F_DUMP_FILTERED

	// GET requests.
	Root   HeaderFlags = 0x100 // NLM_F_ROOT
	Match  HeaderFlags = 0x200 // NLM_F_MATCH
	Atomic HeaderFlags = 0x400 // NLM_F_ATOMIC
	Dump               = Root | Match

	// NEW requests.
	Replace HeaderFlags = 0x100 // NLM_F_REPLACE
	Excl    HeaderFlags = 0x200 // NLM_F_EXCL
	Create  HeaderFlags = 0x400 // NLM_F_CREATE
	Append  HeaderFlags = 0x800 // NLM_F_APPEND

	// Acknowledgements (NLMSG_ERROR).
	Capped          HeaderFlags = 0x100 // NLM_F_CAPPED: the request is not echoed
	AcknowledgeTLVs HeaderFlags = 0x200 // NLM_F_ACK_TLVS: extended ack attributes follow
)

// HeaderLen is sizeof(struct nlmsghdr).
const HeaderLen = 16

// Header is struct nlmsghdr:
//
//	struct nlmsghdr {
//		__u32		nlmsg_len;	/* Length of message including header */
//		__u16		nlmsg_type;	/* Message content */
//		__u16		nlmsg_flags;	/* Additional flags */
//		__u32		nlmsg_seq;	/* Sequence number */
//		__u32		nlmsg_pid;	/* Sending process port ID */
//	};
type Header struct {
	Length   uint32 // of the header and Data, without the padding
	Type     HeaderType
	Flags    HeaderFlags
	Sequence uint32
	PID      uint32
}

// Message is a header and its payload.
type Message struct {
	Header Header
	Data   []byte
}

// Malformed messages.
var (
	ErrShortMessage = errors.New("netlink: short message")
	errShortError   = errors.New("netlink: short error message")
)

func align(n int) int { return (n + 3) &^ 3 }

// AppendMessage appends m to b as the kernel reads it: the header, with
// nlmsg_len computed from Data (m.Header.Length is ignored), then Data
// padded to 4 bytes.
func AppendMessage(b []byte, m Message) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(HeaderLen+len(m.Data)))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Type))
	b = binary.NativeEndian.AppendUint16(b, uint16(m.Header.Flags))
	b = binary.NativeEndian.AppendUint32(b, m.Header.Sequence)
	b = binary.NativeEndian.AppendUint32(b, m.Header.PID)
	b = append(b, m.Data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Next splits the first message off a datagram, without copying: m.Data
// aliases b. rest is what follows it; the kernel pads every message to 4
// bytes but the last may end at the datagram's end. A datagram is walked
// with
//
//	for len(b) >= nl.HeaderLen {
//		m, b, err = nl.Next(b)
//		...
//	}
//
// Fewer than HeaderLen bytes left over are not a message (the kernel
// never sends them) and are for the caller to ignore or refuse.
func Next(b []byte) (m Message, rest []byte, err error) {
	if len(b) < HeaderLen {
		return Message{}, nil, ErrShortMessage
	}
	l := int(binary.NativeEndian.Uint32(b))
	if l < HeaderLen || l > len(b) {
		return Message{}, nil, ErrShortMessage
	}
	m.Header = Header{
		Length:   uint32(l),
		Type:     HeaderType(binary.NativeEndian.Uint16(b[4:])),
		Flags:    HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
		Sequence: binary.NativeEndian.Uint32(b[8:]),
		PID:      binary.NativeEndian.Uint32(b[12:]),
	}
	m.Data = b[HeaderLen:l:l]
	return m, b[min(align(l), len(b)):], nil
}

// ParseMessages splits a datagram into its messages, which alias b.
func ParseMessages(b []byte) ([]Message, error) {
	var out []Message
	for len(b) >= HeaderLen {
		m, rest, err := Next(b)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = rest
	}
	return out, nil
}
