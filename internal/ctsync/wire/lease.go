package wire

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/carpd/carpd/internal/leases"
)

// The LEASE record (extension control record 17): one DHCP lease added,
// renewed or released on the sender (docs/sync-protocol.md#dhcp-leases).
const (
	ctlLease = 17
	// MaxLeaseRecord bounds an encoded LEASE record, its type byte and
	// length included.
	MaxLeaseRecord = 300
	maxLeaseBody   = MaxLeaseRecord - 3
)

// Errors of a LEASE record the receiver refuses (the engine counts them
// by reason).
var (
	ErrLease     = errors.New("invalid lease")
	ErrLeaseSize = errors.New("lease record over its size limit")
)

// Flags of the LEASE record's first body byte.
const (
	leaseOpMask  = 3 // leases.Add, Renew or Release
	leaseV6      = 1 << 2
	leaseTemp    = 1 << 3 // IPv6: a temporary address
	leaseHost    = 1 << 4 // a host name follows
	leaseClient  = 1 << 5 // a client id follows
	leaseClient1 = 1 << 6 // the client id is 01 and the hardware address (Ethernet's usual one)
	leaseFlags   = 1<<7 - 1
)

// appendLease writes a LEASE record: 000 10001, uvarint body length, and
// the body: byte flags, expiry (4, Unix time, 0 never), address (4 or 16),
// IPv4: byte hardware type, byte length, hardware address; IPv6: uvarint
// IAID; then byte length and host name if leaseHost, byte length and
// client id if leaseClient.
func appendLease(b []byte, e *leases.Event) ([]byte, error) {
	l := &e.Lease
	if e.Op > leases.Release || !l.Valid() {
		return b, ErrLease
	}
	var body [maxLeaseBody + 16]byte
	p := body[:1]
	flags := byte(e.Op)
	p = binary.BigEndian.AppendUint32(p, l.Expiry)
	if l.Addr.Is4() {
		a := l.Addr.As4()
		p = append(p, a[:]...)
		p = append(p, l.HWType, byte(len(l.HW)))
		p = append(p, l.HW...)
	} else {
		flags |= leaseV6
		if l.Temp {
			flags |= leaseTemp
		}
		a := l.Addr.As16()
		p = append(p, a[:]...)
		p = binary.AppendUvarint(p, uint64(l.IAID))
	}
	if l.Host != "" {
		flags |= leaseHost
		p = append(p, byte(len(l.Host)))
		p = append(p, l.Host...)
	}
	switch {
	case l.ClientID == "":
	case l.Addr.Is4() && l.HW != "" && len(l.ClientID) == len(l.HW)+1 && l.ClientID[0] == 1 && l.ClientID[1:] == l.HW:
		flags |= leaseClient1
	default:
		flags |= leaseClient
		p = append(p, byte(len(l.ClientID)))
		p = append(p, l.ClientID...)
	}
	if len(p) > maxLeaseBody {
		return b, ErrLease
	}
	p[0] = flags
	b = append(b, kindControl<<kindShift|ctlLease)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...), nil
}

// decodeLease reads a LEASE record's body; bytes after its fields, within
// the body length, are skipped (room for later fields).
func (d *Decoder) decodeLease() {
	r := &d.rec
	r.Type = RecordLease
	size := d.uvarint()
	if d.rerr == nil && size > maxLeaseBody {
		d.fail(ErrLeaseSize)
	}
	if d.rerr != nil {
		return
	}
	end := d.off + int(size)
	if end > len(d.b) {
		d.fail(ErrLease)
		return
	}
	flags := d.u8()
	var l leases.Lease
	l.Expiry = d.u32()
	if flags&leaseV6 != 0 {
		if p := d.bytes(16); p != nil {
			l.Addr = netip.AddrFrom16([16]byte(p))
		}
		l.Temp = flags&leaseTemp != 0
		l.IAID = uint32(d.uvarintMax(1<<32 - 1))
	} else {
		if p := d.bytes(4); p != nil {
			l.Addr = netip.AddrFrom4([4]byte(p))
		}
		l.HWType = d.u8()
		l.HW = string(d.bytes(int(d.u8())))
	}
	if flags&leaseHost != 0 {
		l.Host = string(d.bytes(int(d.u8())))
	}
	if flags&leaseClient != 0 {
		l.ClientID = string(d.bytes(int(d.u8())))
	}
	bad := flags&^leaseFlags != 0 || flags&leaseOpMask > byte(leases.Release) ||
		flags&(leaseClient|leaseClient1) == leaseClient|leaseClient1 ||
		flags&leaseTemp != 0 && flags&leaseV6 == 0 ||
		flags&leaseHost != 0 && l.Host == "" || flags&leaseClient != 0 && l.ClientID == ""
	if flags&leaseClient1 != 0 {
		bad = bad || l.HW == "" || flags&leaseV6 != 0
		l.ClientID = "\x01" + l.HW
	}
	if d.rerr != nil || d.off > end || bad || !l.Valid() {
		d.fail(ErrLease)
		return
	}
	r.Lease = leases.Event{Op: leases.Op(flags & leaseOpMask), Lease: l}
	d.off = end
}
