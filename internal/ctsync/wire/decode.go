package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Decoder walks a record stream: a sticky-error iterator in the style of
// netlink.AttributeDecoder.
//
//	d.Reset(payload)
//	for d.Next() {
//		r := d.Record() // valid until the next call to Next
//	}
//	if err := d.Err(); err != nil { ... }
//
// It validates every field (lengths, varint ranges, family and protocol,
// TCP state, table references, reserved bits) and never panics. A Decoder
// is reusable and allocates nothing except Hello.Name strings.
type Decoder struct {
	b    []byte
	off  int
	n    int   // records decoded so far
	err  error // sticky, returned by Err
	rerr error // first error while reading the current record

	rec    Record
	prevID uint64
	table  [MaxAddrTable]netip.Addr
	ntable int
	ranges [MaxAckRanges]AckRange
	want   [MaxWant]uint64
}

// newDecoder returns a Decoder over the record stream b.
func newDecoder(b []byte) *Decoder {
	d := new(Decoder)
	d.Reset(b)
	return d
}

// Reset starts decoding the record stream b, with a fresh frame context.
func (d *Decoder) Reset(b []byte) {
	d.b, d.off, d.n, d.err, d.rerr = b, 0, 0, nil, nil
	d.prevID, d.ntable = 0, 0
}

// Next decodes the next record. It returns false at the end of the stream
// or on the first error (see Err).
func (d *Decoder) Next() bool {
	if d.err != nil || d.off >= len(d.b) {
		return false
	}
	for {
		start := d.off
		d.rerr = nil
		d.decode()
		if d.rerr != nil {
			d.err = fmt.Errorf("wire: record %d at offset %d: %w", d.n, start, d.rerr)
			return false
		}
		d.n++
		if d.rec.Type != 0 {
			return true
		}
		// An extension record this version does not know: skipped.
		if d.off >= len(d.b) {
			return false
		}
	}
}

// Record returns the record Next decoded. It is overwritten by the next
// call to Next.
func (d *Decoder) Record() *Record { return &d.rec }

// Err returns the error that stopped Next, or nil at a clean end.
func (d *Decoder) Err() error { return d.err }

// offset is the number of bytes consumed.
func (d *Decoder) offset() int { return d.off }

// Sticky readers: after the first failure they return zero values and
// leave rerr set; decode checks rerr before using what it read where a
// zero value could mislead.

func (d *Decoder) fail(err error) {
	if d.rerr == nil {
		d.rerr = err
	}
	d.off = len(d.b)
}

func (d *Decoder) u8() byte {
	if d.off >= len(d.b) {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *Decoder) u16() uint16 {
	if len(d.b)-d.off < 2 {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *Decoder) u32() uint32 {
	if len(d.b)-d.off < 4 {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *Decoder) bytes(n int) []byte {
	if len(d.b)-d.off < n {
		d.fail(io.ErrUnexpectedEOF)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *Decoder) uvarint() uint64 {
	if d.off >= len(d.b) {
		d.fail(io.ErrUnexpectedEOF)
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail(io.ErrUnexpectedEOF)
		return 0
	case n < 0:
		d.fail(errVarint)
		return 0
	}
	d.off += n
	return v
}

// uvarintMax reads a varint that must not exceed max.
func (d *Decoder) uvarintMax(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(errVarint)
		return 0
	}
	return v
}

func (d *Decoder) addr(is6 bool) netip.Addr {
	if is6 {
		p := d.bytes(16)
		if p == nil {
			return netip.Addr{}
		}
		return netip.AddrFrom16([16]byte(p))
	}
	p := d.bytes(4)
	if p == nil {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(p))
}

// id reads a flow id: previous+1 when next is set, else a zigzag delta.
func (d *Decoder) id(next bool) uint64 {
	if next {
		d.prevID++
	} else {
		d.prevID += unzigzag(d.uvarint())
	}
	return d.prevID
}

// timeout reads a timeout in the given unit.
func (d *Decoder) timeout(unit byte) uint32 {
	if unit == unitNone {
		return 0
	}
	mul := unitSecs[unit]
	v := d.uvarint()
	if v > math.MaxUint32/uint64(mul) {
		d.fail(errTimeout)
		return 0
	}
	return uint32(v) * mul
}

func (d *Decoder) decode() {
	r := &d.rec
	*r = Record{}
	b0 := d.u8()
	low := b0 & lowBits
	switch b0 >> kindShift {
	case kindNew:
		r.Type = RecordNew
		d.decodeNew(b0)
	case kindUpdate:
		r.Type = RecordUpdate
		d.decodeUpdate(low)
	case kindDelete:
		r.Type = RecordDelete
		if low != 0 {
			d.prevID += uint64(low)
			r.ID = d.prevID
		} else {
			r.ID = d.id(false)
		}
	case kindRefresh:
		r.Type = RecordRefresh
		if low&refReserved != 0 {
			d.fail(errReservedBits)
			return
		}
		r.ID = d.id(low&refNextID != 0)
		r.Flow.Timeout = d.timeout(low >> refUnitShift & stUnitMask)
	case kindControl:
		d.decodeControl(low)
	default:
		d.fail(fmt.Errorf("%w %#02x", errUnknownRecord, b0))
	}
}

func (d *Decoder) decodeNew(b0 byte) {
	r := &d.rec
	f := &r.Flow
	fp := b0 >> newFPShift & newFPMask
	is6 := fp&fpV6 != 0
	r.ID = d.id(false)
	if b0&newVersion != 0 {
		r.Version = d.uvarint()
	}
	st := d.u8()
	nat := d.u8()
	var ext byte
	if b0&newExt != 0 {
		ext = d.u8()
		if ext&extReserved != 0 || bits.OnesCount8(ext&extAnyFlags) > 1 {
			d.fail(errReservedBits)
			return
		}
	}
	var proto uint8
	switch fp &^ fpV6 {
	case fpTCP:
		proto = flow.ProtoTCP
	case fpUDP:
		proto = flow.ProtoUDP
	case fpICMP:
		proto = flow.ProtoICMP
		if is6 {
			proto = flow.ProtoICMPv6
		}
	case fpOther:
		proto = d.u8()
		switch {
		case d.rerr != nil:
			return
		case proto == 0:
			d.fail(errProto)
			return
		case proto == flow.ProtoICMP && is6, proto == flow.ProtoICMPv6 && !is6:
			d.fail(errFamilyProto)
			return
		}
	}
	tcpState := st >> stStateShift
	if proto != flow.ProtoTCP && (tcpState != 0 || ext&(extWScale|extAnyFlags) != 0) {
		d.fail(errTCPFields)
		return
	}
	if tcpState > flow.TCPSynSent2 {
		d.fail(errTCPState)
		return
	}
	f.TCPState = tcpState

	f.Orig.Proto = proto
	f.Orig.Src = d.addr(is6)
	f.Orig.Dst = d.addr(is6)
	f.Orig.SrcPort = d.u16()
	f.Orig.DstPort = d.u16()
	if d.rerr != nil {
		return
	}
	f.Reply.Proto = proto
	f.Reply.SrcPort, f.Reply.DstPort = defaultReplyPorts(&f.Orig)
	f.Reply.Dst = d.natAddr(nat>>natDstShift&natCodeMask, f.Orig.Src, is6)
	if nat&natDstPort != 0 {
		f.Reply.DstPort = d.u16()
	}
	f.Reply.Src = d.natAddr(nat>>natSrcShift&natCodeMask, f.Orig.Dst, is6)
	if nat&natSrcPort != 0 {
		f.Reply.SrcPort = d.u16()
	}
	if d.rerr != nil {
		return
	}

	implied := uint32(statusNATDone)
	if nat>>natDstShift&natCodeMask != addrSame || nat&natDstPort != 0 {
		implied |= flow.StatusSrcNAT
	}
	if nat>>natSrcShift&natCodeMask != addrSame || nat&natSrcPort != 0 {
		implied |= flow.StatusDstNAT
	}
	var extra uint32
	if nat&natExtraStatus != 0 {
		extra = d.extraStatus(0)
	}
	f.Status = stateStatus(st) | (extra ^ implied)
	if nat&natConfirmed != 0 {
		f.Status |= flow.StatusConfirmed
	}
	f.Timeout = d.timeout(st & stUnitMask)
	if ext&extZone != 0 {
		f.Zone = uint16(d.uvarintMax(math.MaxUint16))
	}
	if ext&extMark != 0 {
		f.Mark = uint32(d.uvarintMax(math.MaxUint32))
	}
	if ext&extWScale != 0 {
		c := d.u8()
		f.TCPWScaleOrig, f.TCPWScaleReply = c>>4, c&0xf
	}
	if ext&extFlags != 0 {
		f.TCPFlagsOrig = d.u8()
		f.TCPFlagsReply = d.u8()
	}
	if ext&extFlagsSame != 0 {
		f.TCPFlagsOrig = d.u8()
		f.TCPFlagsReply = f.TCPFlagsOrig
	}
	if ext&extFlagsOrig != 0 {
		f.TCPFlagsOrig = d.u8()
	}
}

// natAddr reads a reply address by its NAT byte code.
func (d *Decoder) natAddr(code byte, orig netip.Addr, is6 bool) netip.Addr {
	var a netip.Addr
	switch code {
	case addrSame:
		return orig
	case addrInline:
		a = d.addr(is6)
		if d.rerr != nil {
			return netip.Addr{}
		}
		if d.ntable < MaxAddrTable {
			d.table[d.ntable] = a
			d.ntable++
		}
		return a
	case addrTable0:
		if d.ntable == 0 {
			d.fail(errAddrTable)
			return netip.Addr{}
		}
		a = d.table[0]
	case addrIndex:
		i := int(d.u8())
		if d.rerr != nil {
			return netip.Addr{}
		}
		if i >= d.ntable {
			d.fail(errAddrTable)
			return netip.Addr{}
		}
		a = d.table[i]
	}
	if a.Is6() != is6 {
		d.fail(errAddrFamily)
		return netip.Addr{}
	}
	return a
}

// extraStatus reads the packed status bits beyond the ones with flag bits
// (packStatus); they must be non-zero and must not include forbidden.
func (d *Decoder) extraStatus(forbidden uint32) uint32 {
	y := d.uvarintMax(maxPackedStatus - 1)
	if d.rerr != nil {
		return 0
	}
	x := unpackStatus(y)
	if x == 0 || x&forbidden != 0 {
		d.fail(errStatus)
		return 0
	}
	return x
}

func stateStatus(st byte) uint32 {
	var s uint32
	if st&stSeenReply != 0 {
		s |= flow.StatusSeenReply
	}
	if st&stAssured != 0 {
		s |= flow.StatusAssured
	}
	return s
}

func (d *Decoder) decodeUpdate(low byte) {
	r := &d.rec
	f := &r.Flow
	r.ID = d.id(low&updNextID != 0)
	if low&updVersion != 0 {
		r.Version = d.uvarint()
	}
	st := d.u8()
	if d.rerr != nil {
		return
	}
	f.TCPState = st >> stStateShift
	if f.TCPState > flow.TCPSynSent2 {
		d.fail(errTCPState)
		return
	}
	f.Status = stateStatus(st)
	if low&updConfirmed != 0 {
		f.Status |= flow.StatusConfirmed
	}
	if low&updExtraStatus != 0 {
		f.Status |= d.extraStatus(fixedStatus)
	}
	f.Timeout = d.timeout(st & stUnitMask)
	if low&updTCP != 0 {
		c := d.u8()
		f.TCPWScaleOrig, f.TCPWScaleReply = c>>4, c&0xf
		f.TCPFlagsOrig = d.u8()
		f.TCPFlagsReply = d.u8()
	}
}

func (d *Decoder) decodeControl(sub byte) {
	r := &d.rec
	switch sub {
	case ctlPing:
		r.Type = RecordPing
	case ctlHello:
		r.Type = RecordHello
		r.Hello.PeerEpoch = d.u32()
		if p := d.bytes(NonceLen); p != nil {
			r.Hello.PeerNonce = [NonceLen]byte(p)
		}
		n := int(d.u8())
		if n > MaxNameLen {
			d.fail(errNameLen)
			return
		}
		if n > 0 {
			if p := d.bytes(n); p != nil {
				r.Hello.Name = string(p)
			}
		}
	case ctlBulkReq:
		r.Type = RecordBulkReq
		r.Bulk.Seq = d.uvarint()
	case ctlBulkStart:
		r.Type = RecordBulkStart
		r.Bulk.Seq = d.uvarint()
	case ctlBulkEnd:
		r.Type = RecordBulkEnd
		r.Bulk.Seq = d.uvarint()
		r.Bulk.Count = d.uvarint()
		if p := d.bytes(DigestLen); p != nil {
			r.Bulk.Digest = [DigestLen]byte(p)
		}
	case ctlAck:
		r.Type = RecordAck
		d.decodeAck()
	case ctlWant:
		r.Type = RecordWant
		d.decodeWant()
	case ctlCarp:
		d.decodeCarp()
	case ctlLease:
		d.decodeLease()
	case ctlConfig:
		d.decodeConfig()
	case ctlConfigAck:
		d.decodeConfigAck()
	default:
		if sub >= ctlExtFirst {
			// An extension of a later version: skipped (Next).
			d.skipExtension()
			return
		}
		d.fail(fmt.Errorf("%w: control %d", errUnknownRecord, sub))
	}
}

func (d *Decoder) decodeWant() {
	n := d.uvarint()
	if d.rerr != nil {
		return
	}
	if n == 0 || n > MaxWant {
		d.fail(errWant)
		return
	}
	var prev uint64
	for i := range int(n) {
		v := d.uvarint()
		if d.rerr != nil {
			return
		}
		id := v
		if i > 0 {
			id = prev + v + 1
			if v > math.MaxUint64-prev-1 {
				d.fail(errWant)
				return
			}
		}
		d.want[i] = id
		prev = id
	}
	d.rec.Want = d.want[:n:n]
}

func (d *Decoder) decodeAck() {
	a := &d.rec.Ack
	a.Cum = d.uvarint()
	n := d.uvarint()
	if d.rerr != nil {
		return
	}
	if n > MaxAckRanges || (n > 0 && a.Cum == math.MaxUint64) {
		d.fail(errAckRanges)
		return
	}
	next := a.Cum + 1
	for i := range int(n) {
		gap, length := d.uvarint(), d.uvarint()
		if d.rerr != nil {
			return
		}
		first := next + gap
		last := first + length
		if first < next || last < first || (i < int(n)-1 && last >= math.MaxUint64-1) {
			d.fail(errAckRanges)
			return
		}
		d.ranges[i] = AckRange{First: first, Last: last}
		next = last + 2
	}
	if n > 0 {
		a.Ranges = d.ranges[:n:n]
	}
}
