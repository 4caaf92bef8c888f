package carp

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
)

// Advert is a CARP advertisement (docs/carp-protocol.md#header). The C layout, from OpenBSD
// ip_carp.h, with the endian-dependent bitfields written as the wire byte:
//
//	struct carp_header {
//		u_int8_t  carp_version_type;  // (version << 4) | type
//		u_int8_t  carp_vhid;          // virtual host id
//		u_int8_t  carp_advskew;       // advertisement skew
//		u_int8_t  carp_authlen;       // size of counter+md, 32bit chunks
//		u_int8_t  carp_demote;        // demotion indicator (pad1 on FreeBSD)
//		u_int8_t  carp_advbase;       // base advertisement interval
//		u_int16_t carp_cksum;
//		u_int32_t carp_counter[2];
//		unsigned char carp_md[20];    // SHA1 HMAC
//	} __packed;
type Advert struct {
	Version uint8
	Type    uint8
	VHID    uint8
	AdvSkew uint8
	AuthLen uint8
	Demote  uint8
	AdvBase uint8
	// Checksum is the received checksum after UnmarshalBinary; it is
	// recomputed by MarshalBinary.
	Checksum uint16
	Counter  uint64
	HMAC     [20]byte
}

// Offsets into the 36-byte header.
const (
	offVersionType = 0
	offVHID        = 1
	offAdvSkew     = 2
	offAuthLen     = 3
	offDemote      = 4
	offAdvBase     = 5
	offChecksum    = 6
	offCounter     = 8
	offHMAC        = 16
)

var (
	_ encoding.BinaryMarshaler   = (*Advert)(nil)
	_ encoding.BinaryUnmarshaler = (*Advert)(nil)
	_ encoding.BinaryAppender    = (*Advert)(nil)
)

// MarshalBinary encodes a into a new 36-byte slice with a valid checksum.
func (a *Advert) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, HeaderLen))
}

// AppendBinary appends the 36-byte encoding of a to b, computing the
// checksum; it allocates nothing when b has room.
func (a *Advert) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b,
		a.Version<<4|a.Type&0x0f, a.VHID, a.AdvSkew, a.AuthLen,
		a.Demote, a.AdvBase, 0, 0)
	b = binary.BigEndian.AppendUint64(b, a.Counter)
	b = append(b, a.HMAC[:]...)
	binary.BigEndian.PutUint16(b[start+offChecksum:], Checksum(b[start:]))
	return b, nil
}

// UnmarshalBinary decodes exactly HeaderLen bytes. It checks, in the order
// the BSD kernels do, the length, the checksum and the version; it does not
// check type or authlen, which the kernels ignore too
// (docs/carp-protocol.md#header).
func (a *Advert) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return fmt.Errorf("%w: %d bytes: %w", ErrBadLength, len(b), io.ErrUnexpectedEOF)
	}
	if len(b) != HeaderLen {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadLength, len(b), HeaderLen)
	}
	if Checksum(b) != 0 {
		return ErrBadChecksum
	}
	v := b[offVersionType] >> 4
	if v != Version {
		return fmt.Errorf("%w: %d", ErrBadVersion, v)
	}
	*a = Advert{
		Version:  v,
		Type:     b[offVersionType] & 0x0f,
		VHID:     b[offVHID],
		AdvSkew:  b[offAdvSkew],
		AuthLen:  b[offAuthLen],
		Demote:   b[offDemote],
		AdvBase:  b[offAdvBase],
		Checksum: binary.BigEndian.Uint16(b[offChecksum:]),
		Counter:  binary.BigEndian.Uint64(b[offCounter:]),
	}
	copy(a.HMAC[:], b[offHMAC:HeaderLen])
	return nil
}

// Checksum returns the RFC 1071 Internet checksum of b. Over a header whose
// checksum field is zero it gives the value to store; over a header with a
// valid checksum it gives 0. CARP has no pseudo-header, for IPv4 or IPv6.
func Checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
