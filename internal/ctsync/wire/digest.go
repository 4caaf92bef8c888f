package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// Digest is an order-independent summary of a set of (id, flow key) pairs,
// for BULK_END (docs/sync-protocol.md#bulk-transfer): sender and receiver each fold in the flows of the
// bulk transfer and compare Sum and Count. Each pair hashes to 128 bits
// (SHA-256, truncated) and the hashes are added modulo 2^128, so the
// result does not depend on order, a flow can be removed again (the sender
// can keep a running digest of its table), and a pair added twice does not
// cancel out as it would with XOR. The zero value is the empty set.
type Digest struct {
	hi, lo uint64
	n      uint64
}

// digestInputLen: domain byte, id, family, proto, zone, two 16-byte
// addresses, two ports.
const digestInputLen = 1 + 8 + 1 + 1 + 2 + 16 + 16 + 2 + 2

const digestDomain = 0xD1 // versions the per-flow hash input

// Add folds the pair (id, k) into d.
func (d *Digest) Add(id uint64, k flow.Key) {
	hi, lo := flowHash(id, k)
	var c uint64
	d.lo, c = bits.Add64(d.lo, lo, 0)
	d.hi, _ = bits.Add64(d.hi, hi, c)
	d.n++
}

// remove takes a pair added before out of d.
func (d *Digest) remove(id uint64, k flow.Key) {
	hi, lo := flowHash(id, k)
	var b uint64
	d.lo, b = bits.Sub64(d.lo, lo, 0)
	d.hi, _ = bits.Sub64(d.hi, hi, b)
	d.n--
}

// Count is the number of pairs in d.
func (d *Digest) Count() uint64 { return d.n }

// Sum is the 128-bit digest, big endian.
func (d *Digest) Sum() [DigestLen]byte {
	var s [DigestLen]byte
	binary.BigEndian.PutUint64(s[:], d.hi)
	binary.BigEndian.PutUint64(s[8:], d.lo)
	return s
}

// reset empties d.
func (d *Digest) reset() { *d = Digest{} }

func flowHash(id uint64, k flow.Key) (hi, lo uint64) {
	var in [digestInputLen]byte
	b := append(in[:0], digestDomain)
	b = binary.BigEndian.AppendUint64(b, id)
	fam := byte(4)
	if k.Orig.Src.Is6() {
		fam = 6
	}
	b = append(b, fam, k.Orig.Proto)
	b = binary.BigEndian.AppendUint16(b, k.Zone)
	src, dst := k.Orig.Src.As16(), k.Orig.Dst.As16()
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	b = binary.BigEndian.AppendUint16(b, k.Orig.SrcPort)
	b = binary.BigEndian.AppendUint16(b, k.Orig.DstPort)
	h := sha256.Sum256(b)
	return binary.BigEndian.Uint64(h[:]), binary.BigEndian.Uint64(h[8:])
}
