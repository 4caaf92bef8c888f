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
	leaseOpMask  = 3      // leases.Add, Renew or Release
	leaseClient1 = 1 << 2 // the client id is 01 and the hardware address (Ethernet's usual one)
)

// appendLease writes a LEASE record: 000 10001, uvarint body length, and
// the body: byte flags, expiry (4, Unix time, 0 never), IPv4 address (4),
// byte hardware type, byte length and hardware address, byte length and
// host name, byte length and client id (empty with leaseClient1).
func appendLease(b []byte, e *leases.Event) ([]byte, error) {
	l := &e.Lease
	if e.Op > leases.Release || !l.Valid() {
		return b, ErrLease
	}
	flags := byte(e.Op)
	client := l.ClientID
	if l.HW != "" && client == "\x01"+l.HW {
		flags, client = flags|leaseClient1, ""
	}
	body := 1 + 4 + 4 + 2 + len(l.HW) + 1 + len(l.Host) + 1 + len(client)
	b = append(b, kindControl<<kindShift|ctlLease)
	b = binary.AppendUvarint(b, uint64(body))
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, l.Expiry)
	a := l.Addr.As4()
	b = append(b, a[:]...)
	b = append(b, l.HWType, byte(len(l.HW)))
	b = append(b, l.HW...)
	b = append(b, byte(len(l.Host)))
	b = append(b, l.Host...)
	b = append(b, byte(len(client)))
	return append(b, client...), nil
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
		d.rerr = ErrLease // the body runs past the frame
		return
	}
	flags := d.u8()
	var l leases.Lease
	l.Expiry = d.u32()
	if p := d.bytes(4); p != nil {
		l.Addr = netip.AddrFrom4([4]byte(p))
	}
	l.HWType = d.u8()
	l.HW = d.str()
	l.Host = d.str()
	l.ClientID = d.str()
	bad := flags > leaseClient1|leaseOpMask || flags&leaseOpMask > byte(leases.Release)
	if flags&leaseClient1 != 0 {
		bad = bad || l.HW == "" || l.ClientID != ""
		l.ClientID = "\x01" + l.HW
	}
	if d.rerr != nil || d.off > end || bad || !l.Valid() {
		d.rerr = ErrLease // whatever it was: the receiver counts it so
		return
	}
	r.Lease = leases.Event{Op: leases.Op(flags & leaseOpMask), Lease: l}
	d.off = end
}

// str reads a byte length and that many bytes.
func (d *Decoder) str() string {
	return string(d.bytes(int(d.u8())))
}
