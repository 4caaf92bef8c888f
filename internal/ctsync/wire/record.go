package wire

import (
	"encoding"
	"fmt"
	"io"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/leases"
)

// RecordType is the kind of a record in a frame's record stream (doc.go,
// "Records"; docs/sync-protocol.md#records).
type RecordType uint8

// Data records (NEW, UPD, DEL, REFRESH) refer to flows by the sender's id;
// the others are control records.
const (
	RecordNew       RecordType = iota + 1 // a flow with its full state; overwrites
	RecordUpdate                          // full mutable state: TCP state, status, timeout
	RecordDelete                          // the flow is gone
	RecordRefresh                         // new remaining timeout, nothing else changed
	RecordHello                           // session handshake (first record of a HELLO frame)
	RecordBulkReq                         // "send me your whole table"
	RecordBulkStart                       // a bulk transfer begins
	RecordBulkEnd                         // a bulk transfer ended: count and digest
	RecordAck                             // cumulative ack + SACK ranges
	RecordPing                            // keepalive, nothing else
	RecordWant                            // "send me these flows whole" (anti-entropy)
	RecordCarp                            // the sender's CARP states (split-brain detection)
	RecordLease                           // a DHCP lease added, renewed or released (lease sync)
	RecordConfig                          // a chunk of a synced configuration object
	RecordConfigAck                       // the answer for a configuration object
)

func (t RecordType) String() string {
	switch t {
	case RecordNew:
		return "NEW"
	case RecordUpdate:
		return "UPD"
	case RecordDelete:
		return "DEL"
	case RecordRefresh:
		return "REFRESH"
	case RecordHello:
		return "HELLO"
	case RecordBulkReq:
		return "BULK_REQ"
	case RecordBulkStart:
		return "BULK_START"
	case RecordBulkEnd:
		return "BULK_END"
	case RecordAck:
		return "ACK"
	case RecordPing:
		return "PING"
	case RecordWant:
		return "WANT"
	case RecordCarp:
		return "CARP"
	case RecordLease:
		return "LEASE"
	case RecordConfig:
		return "CONFIG"
	case RecordConfigAck:
		return "CONFIG_ACK"
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// Limits of the record format.
const (
	// MaxAddrTable is the capacity of a frame's router-address table. An
	// inline NAT address is appended while the table has room.
	MaxAddrTable = 16
	// MaxNameLen bounds Hello.Name.
	MaxNameLen = 64
	// MaxAckRanges bounds Ack.Ranges.
	MaxAckRanges = 32
	// NonceLen is the size of a session nonce.
	NonceLen = 16
	// DigestLen is the size of a table digest (Digest.Sum).
	DigestLen = 16
	// MaxWant bounds Record.Want.
	MaxWant = 64
)

// Record is one entry of a frame's record stream. Which fields an encoder
// reads and a decoder fills depends on Type:
//
//	NEW         ID, Version, Flow (all of it)
//	UPD         ID, Version, Flow.TCPState, Flow.Status, Flow.Timeout,
//	            Flow.TCPWScale*, Flow.TCPFlags*
//	DEL         ID
//	REFRESH     ID, Flow.Timeout
//	HELLO       Hello
//	BULK_REQ    Bulk.Seq
//	BULK_START  Bulk.Seq
//	BULK_END    Bulk.Seq, Bulk.Count, Bulk.Digest
//	ACK         Ack
//	PING        -
//	WANT        Want
//	CARP        Carp
//	LEASE       Lease
//
// so a sender can put the flow's current state into NEW and UPD alike.
//
// Idempotence (docs/sync-protocol.md#flow-ids-and-versions): a NEW carries the whole flow and overwrites; an UPD
// carries the whole mutable state, not a delta. Version is a per-flow
// counter the sender bumps on every change; the receiver applies a NEW or
// UPD only if its Version is higher than the one it holds (or the flow is
// unknown, for NEW), so duplicates and reordered frames are harmless. Ids
// are never reused within a sender epoch, so a DEL is final: the receiver
// ignores later records for a deleted id. REFRESH only extends a lifetime
// and needs no version.
//
// What an UPD leaves out: IPS_SRC_NAT, IPS_DST_NAT and the two
// IPS_*_NAT_DONE bits, which are fixed before a flow is confirmed (the
// encoder drops them; the receiver keeps the ones from NEW), and TCP window
// scales and flags when all four are zero, which means "unchanged" (they
// become known once, after the handshake; a sender may zero them in later
// UPDs to save 3 bytes). A zero Timeout means "not sent" in every record.
type Record struct {
	Type RecordType
	// ID is the sender-assigned flow id, unique within the sender's epoch.
	ID uint64
	// Version orders the states of one flow; zero costs nothing on the wire.
	Version uint64
	// Flow is the flow of a NEW record, and the new state of an UPD or
	// REFRESH (the fields listed above; a decoder leaves the rest zero).
	Flow flow.Flow

	Hello Hello
	Bulk  Bulk
	Ack   Ack
	// Want lists the ids of the receiver's flows the sender lacks (it got
	// an UPD or REFRESH for them): ascending, at most MaxWant. A
	// Decoder's Want points into the decoder and is valid until Next.
	Want []uint64
	// Carp lists the sender's vhids and their states (CARP): 1 to
	// MaxCarpStates. A decoded one is the caller's to keep.
	Carp []CarpState
	// Lease is a LEASE record's event (lease.go).
	Lease leases.Event
	// Config is a chunk of a synced configuration object (CONFIG); a
	// decoded one, Data included, is the caller's to keep. ConfigAck
	// answers one (CONFIG_ACK). Pointers: every Record copied in the
	// flow paths stays as small as before configuration sync.
	Config    *ConfigChunk
	ConfigAck *ConfigAck
}

// Hello is the handshake record. The sender's own epoch and nonce travel
// in the HELLO frame header; the record echoes what the sender knows of
// the receiver, which confirms the receiver's session (frame.go).
type Hello struct {
	// PeerEpoch and PeerNonce are the receiver's epoch and nonce as the
	// sender last saw them; zero if it has seen none.
	PeerEpoch uint32
	PeerNonce [NonceLen]byte
	// Name is the sender's node name, for logs; at most MaxNameLen bytes.
	Name string
}

// Bulk is the body of BULK_REQ, BULK_START and BULK_END (docs/sync-protocol.md#bulk-transfer).
type Bulk struct {
	// Seq numbers a bulk request; BULK_START and BULK_END echo it.
	Seq uint64
	// Count is the number of flows the bulk transfer sent (BULK_END).
	Count uint64
	// Digest is Digest.Sum over the (id, key) of those flows (BULK_END).
	Digest [DigestLen]byte
}

// Ack acknowledges the peer's packet numbers (docs/sync-protocol.md#reliability): all below Cum, and
// the ranges in Ranges, which lie above Cum, ascending, with at least one
// missing packet number before each.
type Ack struct {
	// Cum is the lowest packet number not yet received.
	Cum uint64
	// Ranges are received blocks above Cum; at most MaxAckRanges. A
	// Decoder's Ranges point into the decoder and are valid until Next.
	Ranges []AckRange
}

// AckRange is an inclusive range of received packet numbers.
type AckRange struct{ First, Last uint64 }

var (
	_ encoding.BinaryMarshaler   = (*Record)(nil)
	_ encoding.BinaryAppender    = (*Record)(nil)
	_ encoding.BinaryUnmarshaler = (*Record)(nil)
)

// MarshalBinary encodes r as a record stream of its own (the first record
// of a frame: no previous id, empty address table).
func (r *Record) MarshalBinary() ([]byte, error) { return r.AppendBinary(nil) }

// AppendBinary appends the encoding of r as the first record of a stream.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	var e Encoder
	e.Reset(b)
	if err := e.Append(r); err != nil {
		return b, err
	}
	return e.Bytes(), nil
}

// UnmarshalBinary decodes exactly one record that starts a stream.
func (r *Record) UnmarshalBinary(b []byte) error {
	var d Decoder
	d.Reset(b)
	if !d.Next() {
		if err := d.Err(); err != nil {
			return err
		}
		return fmt.Errorf("wire: empty record: %w", io.ErrUnexpectedEOF)
	}
	if d.off != len(b) {
		return fmt.Errorf("wire: %d bytes after record: %w", len(b)-d.off, errTrailing)
	}
	*r = d.rec
	if len(d.rec.Ack.Ranges) > 0 {
		r.Ack.Ranges = append([]AckRange(nil), d.rec.Ack.Ranges...)
	}
	return nil
}

// appendRecords appends the record stream of recs to b.
func appendRecords(b []byte, recs []Record) ([]byte, error) {
	var e Encoder
	e.Reset(b)
	for i := range recs {
		if err := e.Append(&recs[i]); err != nil {
			return b, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return e.Bytes(), nil
}

// DecodeRecords calls fn for each record of the stream b, in order. The
// record is only valid during the call. It stops at the first error, from
// the stream or from fn.
func DecodeRecords(b []byte, fn func(*Record) error) error {
	var d Decoder
	d.Reset(b)
	for d.Next() {
		if err := fn(d.Record()); err != nil {
			return err
		}
	}
	return d.Err()
}

// Address helpers shared by the encoder and decoder.

// defaultReplyPorts are the reply ports of a flow without NAT: swapped for
// port protocols; for ICMP the echo id stays in SrcPort and the type turns
// into its reply (echo request -> echo reply), as conntrack inverts it.
func defaultReplyPorts(o *flow.Tuple) (src, dst uint16) {
	switch o.Proto {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		return o.SrcPort, icmpReplyTypeCode(o.Proto, o.DstPort)
	}
	return o.DstPort, o.SrcPort
}

// icmpReplyTypeCode maps type<<8|code of a request to its reply, following
// invmap in the kernel's nf_conntrack_proto_icmp.c and _icmpv6.c. Types
// without a reply map to themselves.
func icmpReplyTypeCode(proto uint8, tc uint16) uint16 {
	t, code := uint8(tc>>8), tc&0xff
	if proto == flow.ProtoICMP {
		switch t {
		case 8: // echo
			t = 0
		case 0:
			t = 8
		case 13, 15, 17: // timestamp, info, address mask requests
			t++
		case 14, 16, 18:
			t--
		}
	} else {
		switch t {
		case 128, 139: // echo request, node information query
			t++
		case 129, 140:
			t--
		}
	}
	return uint16(t)<<8 | code
}

// addrOK reports whether a can be carried in a flow of the given family.
func addrOK(a netip.Addr, is6 bool) bool {
	return a.IsValid() && a.Zone() == "" && a.Is6() == is6
}
