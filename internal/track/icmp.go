package track

import (
	"encoding/binary"
	"errors"

	"github.com/carpd/carpd/internal/carp"
)

// ICMP echo as carpd sends and receives it (RFC 792; RFC 4443, section 4).
const (
	icmp4EchoRequest = 8
	icmp4EchoReply   = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129

	// echoPayloadLen: the tracker's 8-byte nonce and 8 bytes of padding.
	echoPayloadLen = 16
	echoLen        = 8 + echoPayloadLen
)

// Reasons a received ICMP packet is dropped (Status.Dropped keys).
const (
	dropShort     = "short"
	dropIPHeader  = "bad_ip_header"
	dropChecksum  = "bad_checksum"
	dropNotReply  = "not_echo_reply"
	dropID        = "wrong_id"
	dropNonce     = "wrong_payload"
	dropSource    = "wrong_source"
	dropUnknown   = "unknown_sequence"
	dropDuplicate = "duplicate"
)

// echo is a decoded echo reply.
type echo struct {
	id, seq uint16
	nonce   uint64
}

// errDrop is a decoding failure; its text is the drop reason.
type errDrop string

func (e errDrop) Error() string { return string(e) }

// parseEchoReply decodes what a raw ICMP socket delivers: for IPv4 the IP
// header and the ICMP message, for IPv6 (v6) the ICMPv6 message alone (the
// kernel has checked its checksum). It checks the IP header's framing, the
// ICMPv4 checksum and that the message is an echo reply of carpd's shape;
// the caller checks id, nonce, source and sequence.
func parseEchoReply(b []byte, v6 bool) (echo, error) {
	if !v6 {
		var err error
		if b, err = icmp4Message(b); err != nil {
			return echo{}, err
		}
		if carp.Checksum(b) != 0 {
			return echo{}, errDrop(dropChecksum)
		}
	} else if len(b) < 8 {
		return echo{}, errDrop(dropShort)
	}
	want := byte(icmp4EchoReply)
	if v6 {
		want = icmp6EchoReply
	}
	if b[0] != want || b[1] != 0 {
		return echo{}, errDrop(dropNotReply)
	}
	e := echo{id: binary.BigEndian.Uint16(b[4:6]), seq: binary.BigEndian.Uint16(b[6:8])}
	if len(b) < echoLen {
		// Not ours (carpd always sends the nonce), but the id may still
		// say whose it is: the caller checks the id first.
		return e, errShortPayload
	}
	e.nonce = binary.BigEndian.Uint64(b[8:16])
	return e, nil
}

// icmp4Message returns the ICMP message in an IPv4 datagram, checking the
// header's framing.
func icmp4Message(b []byte) ([]byte, error) {
	if len(b) < 20 {
		return nil, errDrop(dropShort)
	}
	if b[0]>>4 != 4 {
		return nil, errDrop(dropIPHeader)
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || ihl > len(b) || b[9] != 1 {
		return nil, errDrop(dropIPHeader)
	}
	// The datagram's total length bounds the message (the kernel delivers
	// exactly the datagram); a total that claims more than was read is
	// short, one too small for the header and a message is ignored.
	if total > len(b) {
		return nil, errDrop(dropShort)
	}
	if total >= ihl+8 {
		b = b[ihl:total]
	} else {
		b = b[ihl:]
	}
	if len(b) < 8 {
		return nil, errDrop(dropShort)
	}
	return b, nil
}

// errShortPayload: an echo reply without carpd's payload.
var errShortPayload = errors.New("echo reply without payload")

// appendEchoRequest appends an echo request with carpd's payload; for IPv4
// with its checksum (the kernel fills ICMPv6's).
func appendEchoRequest(b []byte, v6 bool, id, seq uint16, nonce uint64) []byte {
	typ := byte(icmp4EchoRequest)
	if v6 {
		typ = icmp6EchoRequest
	}
	start := len(b)
	b = append(b, typ, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint64(b, nonce)
	b = append(b, "carpd-tr"...) // padding, recognisable in captures
	if !v6 {
		binary.BigEndian.PutUint16(b[start+2:], carp.Checksum(b[start:]))
	}
	return b
}
