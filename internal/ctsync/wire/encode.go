package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Record kinds: the top three bits of a record's first byte. The low five
// bits are flags of the kind (doc.go draws each layout).
const (
	kindShift   = 5
	lowBits     = 0x1f
	kindControl = 0
	kindNew     = 1
	kindUpdate  = 2
	kindDelete  = 3
	kindRefresh = 4
)

// Control subtypes: the low five bits of a control record's first byte.
const (
	ctlPing      = 0
	ctlHello     = 1
	ctlBulkReq   = 2
	ctlBulkStart = 3
	ctlBulkEnd   = 4
	ctlAck       = 5
	ctlWant      = 6
)

// NEW first byte: 001 FFF V X.
const (
	newFPShift = 2
	newFPMask  = 0x7
	newVersion = 1 << 1
	newExt     = 1 << 0

	fpTCP   = 0 // family/proto code, low two bits
	fpUDP   = 1
	fpICMP  = 2 // ICMP for IPv4, ICMPv6 for IPv6
	fpOther = 3 // a protocol byte follows
	fpV6    = 4 // family bit
)

// State byte (NEW and UPD): SSSS R A UU.
const (
	stStateShift = 4
	stSeenReply  = 1 << 3
	stAssured    = 1 << 2
	stUnitMask   = 0x3
)

// Timeout units (UU).
const (
	unitNone    = 0 // no timeout: Timeout is zero
	unitSeconds = 1
	unitMinutes = 2
	unitHours   = 3
)

var unitSecs = [4]uint32{0, 1, 60, 3600}

// NAT byte (NEW): DD d SS s C X.
const (
	natDstShift    = 6      // reply destination (SNAT) address code
	natDstPort     = 1 << 5 // reply destination port follows
	natSrcShift    = 3      // reply source (DNAT) address code
	natSrcPort     = 1 << 2 // reply source port follows
	natConfirmed   = 1 << 1
	natExtraStatus = 1 << 0
	natCodeMask    = 0x3
)

// Address codes of the NAT byte.
const (
	addrSame   = 0 // as in the original tuple: no NAT of this side
	addrInline = 1 // 4 or 16 bytes follow; appended to the table if it has room
	addrTable0 = 2 // address-table entry 0
	addrIndex  = 3 // an index byte follows
)

// Extension byte (NEW, present when X is set): 00 o f F W M z.
const (
	extZone      = 1 << 0
	extMark      = 1 << 1
	extWScale    = 1 << 2
	extFlags     = 1 << 3 // two bytes: orig, reply
	extFlagsSame = 1 << 4 // one byte for both directions
	extFlagsOrig = 1 << 5 // one byte for the originator; the reply's are zero
	extReserved  = 0xc0
	extAnyFlags  = extFlags | extFlagsSame | extFlagsOrig
)

// UPD first byte: 010 I V C X T.
const (
	updNextID      = 1 << 4
	updVersion     = 1 << 3
	updConfirmed   = 1 << 2
	updExtraStatus = 1 << 1
	updTCP         = 1 << 0 // window scales and flags follow (3 bytes)
)

// REFRESH first byte: 100 I UU 00.
const (
	refNextID    = 1 << 4
	refUnitShift = 2
	refReserved  = 0x3
)

// DEL first byte: 011 DDDDD; D = 0: a zigzag id delta follows.
const delMaxInline = lowBits

// Status bits: the state byte and the NAT (NEW) or first (UPD) byte carry
// baseStatus; any others travel as an "extra status" varint, XORed with
// what NEW predicts (doc.go).
//
//	enum ip_conntrack_status {           // nf_conntrack_common.h
//		IPS_SRC_NAT_DONE_BIT = 7,
//		IPS_DST_NAT_DONE_BIT = 8,        // both set by the NAT hooks,
//		...                              // null bindings included
const (
	baseStatus        = flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed
	natStatus         = flow.StatusSrcNAT | flow.StatusDstNAT
	statusNATDone     = 1<<7 | 1<<8
	fixedStatus       = natStatus | statusNATDone // set before a flow is confirmed; UPD drops them
	maxPackedStatus   = 1 << 29                   // packStatus of any uint32 is below this
	packedStatusShift = 4                         // bits 1-3 (baseStatus) are never extra
)

// packStatus squeezes extra status bits for the varint: bit 0 (EXPECTED)
// stays, bits 4-31 move down to 1-28, so OFFLOAD (bit 14) takes 2 bytes
// rather than 3. Bits 1-3 must be clear.
func packStatus(x uint32) uint64 {
	return uint64(x>>packedStatusShift)<<1 | uint64(x&1)
}

func unpackStatus(y uint64) uint32 {
	return uint32(y>>1)<<packedStatusShift | uint32(y&1)
}

// Sizes of the fixed fields.
const (
	portLen      = 2
	helloBodyLen = 4 + NonceLen + 1 // peer epoch, peer nonce, name length
)

// Encoder appends records to a frame's record stream, keeping the
// per-frame context: the previous flow id (ids are zigzag deltas against
// it) and the router-address table. The zero value is ready for Reset.
type Encoder struct {
	// Limit, if positive, caps len(Bytes()): Append returns ErrFrameFull
	// and leaves the encoder unchanged when a record does not fit.
	Limit int

	b      []byte
	prevID uint64
	table  [MaxAddrTable]netip.Addr
	ntable int
}

// Reset starts a new record stream appended to b (which may hold a frame
// header already; Limit counts it).
func (e *Encoder) Reset(b []byte) {
	e.b, e.prevID, e.ntable = b, 0, 0
}

// Bytes returns the buffer passed to Reset with the records appended.
func (e *Encoder) Bytes() []byte { return e.b }

// Len is len(Bytes()).
func (e *Encoder) Len() int { return len(e.b) }

// Append appends r. On error (invalid record, or ErrFrameFull) the encoder
// is left as it was before the call.
func (e *Encoder) Append(r *Record) error {
	n0, prev, nt := len(e.b), e.prevID, e.ntable
	b, err := e.appendRecord(e.b, r)
	if err == nil && e.Limit > 0 && len(b) > e.Limit {
		err = ErrFrameFull
	}
	if err != nil {
		e.b, e.prevID, e.ntable = b[:n0], prev, nt
		if err == ErrFrameFull {
			return err
		}
		return fmt.Errorf("wire: encode %v: %w", r.Type, err)
	}
	e.b = b
	return nil
}

func (e *Encoder) appendRecord(b []byte, r *Record) ([]byte, error) {
	switch r.Type {
	case RecordNew:
		return e.appendNew(b, r)
	case RecordUpdate:
		return e.appendUpdate(b, r)
	case RecordDelete:
		d := r.ID - e.prevID
		e.prevID = r.ID
		if d >= 1 && d <= delMaxInline {
			return append(b, kindDelete<<kindShift|byte(d)), nil
		}
		b = append(b, kindDelete<<kindShift)
		return binary.AppendUvarint(b, zigzag(d)), nil
	case RecordRefresh:
		unit, v := timeoutUnit(r.Flow.Timeout)
		b0 := byte(kindRefresh<<kindShift | unit<<refUnitShift)
		if r.ID == e.prevID+1 {
			b0 |= refNextID
		}
		b = append(b, b0)
		b = e.appendID(b, r.ID, b0&refNextID != 0)
		if unit != unitNone {
			b = binary.AppendUvarint(b, uint64(v))
		}
		return b, nil
	case RecordPing:
		return append(b, kindControl<<kindShift|ctlPing), nil
	case RecordHello:
		h := &r.Hello
		if len(h.Name) > MaxNameLen {
			return b, errNameLen
		}
		b = append(b, kindControl<<kindShift|ctlHello)
		b = binary.BigEndian.AppendUint32(b, h.PeerEpoch)
		b = append(b, h.PeerNonce[:]...)
		b = append(b, byte(len(h.Name)))
		return append(b, h.Name...), nil
	case RecordBulkReq:
		b = append(b, kindControl<<kindShift|ctlBulkReq)
		return binary.AppendUvarint(b, r.Bulk.Seq), nil
	case RecordBulkStart:
		b = append(b, kindControl<<kindShift|ctlBulkStart)
		return binary.AppendUvarint(b, r.Bulk.Seq), nil
	case RecordBulkEnd:
		b = append(b, kindControl<<kindShift|ctlBulkEnd)
		b = binary.AppendUvarint(b, r.Bulk.Seq)
		b = binary.AppendUvarint(b, r.Bulk.Count)
		return append(b, r.Bulk.Digest[:]...), nil
	case RecordAck:
		return appendAck(b, &r.Ack)
	case RecordWant:
		return appendWant(b, r.Want)
	case RecordCarp:
		return appendCarp(b, r.Carp)
	case RecordLease:
		return appendLease(b, &r.Lease)
	case RecordConfig:
		return appendConfig(b, r.Config)
	case RecordConfigAck:
		return appendConfigAck(b, r.ConfigAck)
	}
	return b, errRecordType
}

// appendID writes the id as a zigzag delta, unless the first byte said
// "previous + 1".
func (e *Encoder) appendID(b []byte, id uint64, next bool) []byte {
	d := id - e.prevID
	e.prevID = id
	if next {
		return b
	}
	return binary.AppendUvarint(b, zigzag(d))
}

func (e *Encoder) appendNew(b []byte, r *Record) ([]byte, error) {
	f := &r.Flow
	fp, err := famProto(f)
	if err != nil {
		return b, err
	}
	is6 := fp&fpV6 != 0
	tcp := f.Orig.Proto == flow.ProtoTCP
	if !tcp && f.TCPState|f.TCPWScaleOrig|f.TCPWScaleReply|f.TCPFlagsOrig|f.TCPFlagsReply != 0 {
		return b, errTCPFields
	}
	if f.TCPState > flow.TCPSynSent2 {
		return b, errTCPState
	}
	if f.TCPWScaleOrig > 15 || f.TCPWScaleReply > 15 {
		return b, errWScale
	}

	var ext byte
	if f.Zone != 0 {
		ext |= extZone
	}
	if f.Mark != 0 {
		ext |= extMark
	}
	if f.TCPWScaleOrig|f.TCPWScaleReply != 0 {
		ext |= extWScale
	}
	switch {
	case f.TCPFlagsOrig == f.TCPFlagsReply:
		if f.TCPFlagsOrig != 0 {
			ext |= extFlagsSame
		}
	case f.TCPFlagsReply == 0:
		ext |= extFlagsOrig // SYN_SENT: the reply has said nothing yet
	default:
		ext |= extFlags
	}

	b0 := byte(kindNew<<kindShift | fp<<newFPShift)
	if r.Version != 0 {
		b0 |= newVersion
	}
	if ext != 0 {
		b0 |= newExt
	}
	b = append(b, b0)
	b = e.appendID(b, r.ID, false)
	if r.Version != 0 {
		b = binary.AppendUvarint(b, r.Version)
	}

	unit, tv := timeoutUnit(f.Timeout)
	st := f.TCPState<<stStateShift | unit
	if f.Status&flow.StatusSeenReply != 0 {
		st |= stSeenReply
	}
	if f.Status&flow.StatusAssured != 0 {
		st |= stAssured
	}

	// NAT: the reply tuple against what it would be without NAT. The
	// codes are chosen (and inline addresses enter the table) in the
	// order the decoder reads them: reply destination, then source.
	defSrcPort, defDstPort := defaultReplyPorts(&f.Orig)
	dstCode, dstIdx := e.addrCode(f.Reply.Dst, f.Orig.Src)
	srcCode, srcIdx := e.addrCode(f.Reply.Src, f.Orig.Dst)
	nat := dstCode<<natDstShift | srcCode<<natSrcShift
	implied := uint32(statusNATDone)
	if f.Reply.DstPort != defDstPort {
		nat |= natDstPort
	}
	if f.Reply.SrcPort != defSrcPort {
		nat |= natSrcPort
	}
	if dstCode != addrSame || nat&natDstPort != 0 {
		implied |= flow.StatusSrcNAT
	}
	if srcCode != addrSame || nat&natSrcPort != 0 {
		implied |= flow.StatusDstNAT
	}
	if f.Status&flow.StatusConfirmed != 0 {
		nat |= natConfirmed
	}
	extra := f.Status&^baseStatus ^ implied
	if extra != 0 {
		nat |= natExtraStatus
	}
	b = append(b, st, nat)
	if ext != 0 {
		b = append(b, ext)
	}
	if fp&fpOther == fpOther {
		b = append(b, f.Orig.Proto)
	}
	b = appendAddr(b, f.Orig.Src, is6)
	b = appendAddr(b, f.Orig.Dst, is6)
	b = binary.BigEndian.AppendUint16(b, f.Orig.SrcPort)
	b = binary.BigEndian.AppendUint16(b, f.Orig.DstPort)
	b = appendNATAddr(b, dstCode, dstIdx, f.Reply.Dst, is6)
	if nat&natDstPort != 0 {
		b = binary.BigEndian.AppendUint16(b, f.Reply.DstPort)
	}
	b = appendNATAddr(b, srcCode, srcIdx, f.Reply.Src, is6)
	if nat&natSrcPort != 0 {
		b = binary.BigEndian.AppendUint16(b, f.Reply.SrcPort)
	}
	if extra != 0 {
		b = binary.AppendUvarint(b, packStatus(extra))
	}
	if unit != unitNone {
		b = binary.AppendUvarint(b, uint64(tv))
	}
	if ext&extZone != 0 {
		b = binary.AppendUvarint(b, uint64(f.Zone))
	}
	if ext&extMark != 0 {
		b = binary.AppendUvarint(b, uint64(f.Mark))
	}
	if ext&extWScale != 0 {
		b = append(b, f.TCPWScaleOrig<<4|f.TCPWScaleReply)
	}
	if ext&extFlags != 0 {
		b = append(b, f.TCPFlagsOrig, f.TCPFlagsReply)
	}
	if ext&(extFlagsSame|extFlagsOrig) != 0 {
		b = append(b, f.TCPFlagsOrig)
	}
	return b, nil
}

func (e *Encoder) appendUpdate(b []byte, r *Record) ([]byte, error) {
	f := &r.Flow
	if f.TCPState > flow.TCPSynSent2 {
		return b, errTCPState
	}
	if f.TCPWScaleOrig > 15 || f.TCPWScaleReply > 15 {
		return b, errWScale
	}
	b0 := byte(kindUpdate << kindShift)
	if r.ID == e.prevID+1 {
		b0 |= updNextID
	}
	if r.Version != 0 {
		b0 |= updVersion
	}
	if f.Status&flow.StatusConfirmed != 0 {
		b0 |= updConfirmed
	}
	extra := f.Status &^ (baseStatus | fixedStatus)
	if extra != 0 {
		b0 |= updExtraStatus
	}
	if f.TCPWScaleOrig|f.TCPWScaleReply|f.TCPFlagsOrig|f.TCPFlagsReply != 0 {
		b0 |= updTCP
	}
	unit, tv := timeoutUnit(f.Timeout)
	st := f.TCPState<<stStateShift | unit
	if f.Status&flow.StatusSeenReply != 0 {
		st |= stSeenReply
	}
	if f.Status&flow.StatusAssured != 0 {
		st |= stAssured
	}
	b = append(b, b0)
	b = e.appendID(b, r.ID, b0&updNextID != 0)
	if r.Version != 0 {
		b = binary.AppendUvarint(b, r.Version)
	}
	b = append(b, st)
	if extra != 0 {
		b = binary.AppendUvarint(b, packStatus(extra))
	}
	if unit != unitNone {
		b = binary.AppendUvarint(b, uint64(tv))
	}
	if b0&updTCP != 0 {
		b = append(b, f.TCPWScaleOrig<<4|f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply)
	}
	return b, nil
}

// addrCode picks the NAT byte code for a reply address: addrSame when it
// equals the original one, else a table reference, else inline (and into
// the table while it has room).
func (e *Encoder) addrCode(a, orig netip.Addr) (code byte, idx int) {
	if a == orig {
		return addrSame, 0
	}
	for i := 0; i < e.ntable; i++ {
		if e.table[i] == a {
			if i == 0 {
				return addrTable0, 0
			}
			return addrIndex, i
		}
	}
	if e.ntable < MaxAddrTable {
		e.table[e.ntable] = a
		e.ntable++
	}
	return addrInline, 0
}

func appendNATAddr(b []byte, code byte, idx int, a netip.Addr, is6 bool) []byte {
	switch code {
	case addrInline:
		return appendAddr(b, a, is6)
	case addrIndex:
		return append(b, byte(idx))
	}
	return b
}

func appendAddr(b []byte, a netip.Addr, is6 bool) []byte {
	if is6 {
		a16 := a.As16()
		return append(b, a16[:]...)
	}
	a4 := a.As4()
	return append(b, a4[:]...)
}

// famProto checks the addresses and protocol of f and returns the
// family/proto code of the NEW first byte.
func famProto(f *flow.Flow) (byte, error) {
	is6 := f.Orig.Src.Is6()
	for _, a := range [...]netip.Addr{f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst} {
		if !addrOK(a, is6) {
			return 0, fmt.Errorf("%w: %v", errAddress, a)
		}
	}
	if f.Reply.Proto != f.Orig.Proto {
		return 0, errProto
	}
	var fp byte
	switch f.Orig.Proto {
	case 0:
		return 0, errProto
	case flow.ProtoTCP:
		fp = fpTCP
	case flow.ProtoUDP:
		fp = fpUDP
	case flow.ProtoICMP:
		if is6 {
			return 0, errFamilyProto
		}
		fp = fpICMP
	case flow.ProtoICMPv6:
		if !is6 {
			return 0, errFamilyProto
		}
		fp = fpICMP
	default:
		fp = fpOther
	}
	if is6 {
		fp |= fpV6
	}
	return fp, nil
}

// timeoutUnit picks the coarsest unit that represents t exactly.
func timeoutUnit(t uint32) (unit byte, v uint32) {
	switch {
	case t == 0:
		return unitNone, 0
	case t%3600 == 0:
		return unitHours, t / 3600
	case t%60 == 0:
		return unitMinutes, t / 60
	}
	return unitSeconds, t
}

// appendWant writes WANT: the count, the first id, then each next id as
// its distance to the previous one minus one.
func appendWant(b []byte, ids []uint64) ([]byte, error) {
	if len(ids) == 0 || len(ids) > MaxWant {
		return b, errWant
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return b, errWant
		}
	}
	b = append(b, kindControl<<kindShift|ctlWant)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	b = binary.AppendUvarint(b, ids[0])
	for i := 1; i < len(ids); i++ {
		b = binary.AppendUvarint(b, ids[i]-ids[i-1]-1)
	}
	return b, nil
}

func appendAck(b []byte, a *Ack) ([]byte, error) {
	if len(a.Ranges) > MaxAckRanges {
		return b, errAckRanges
	}
	b = append(b, kindControl<<kindShift|ctlAck)
	b = binary.AppendUvarint(b, a.Cum)
	b = binary.AppendUvarint(b, uint64(len(a.Ranges)))
	// The first range starts at Cum+1 or later (Cum itself is missing),
	// every later one at least two after the previous Last.
	if len(a.Ranges) > 0 && a.Cum == math.MaxUint64 {
		return b, errAckRanges
	}
	next := a.Cum + 1
	for i, rg := range a.Ranges {
		if rg.First < next || rg.Last < rg.First || (i < len(a.Ranges)-1 && rg.Last >= math.MaxUint64-1) {
			return b, errAckRanges
		}
		b = binary.AppendUvarint(b, rg.First-next)
		b = binary.AppendUvarint(b, rg.Last-rg.First)
		next = rg.Last + 2
	}
	return b, nil
}

func zigzag(d uint64) uint64 { return d<<1 ^ uint64(int64(d)>>63) }

func unzigzag(z uint64) uint64 { return z>>1 ^ -(z & 1) }
