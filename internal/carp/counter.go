package carp

import (
	"crypto/hmac"
	"encoding/binary"
	"net/netip"
	"time"
)

// The carpd counter format. The BSD HMAC covers the 8-byte counter but not
// advbase, advskew or demote, so a host that captured one advert can replay
// it with any timing. carpd puts its own timing and a sequence number into
// the counter, where the HMAC protects them, and stays on the wire format:
// BSD and ucarp peers treat the counter as an opaque number (docs/carp-
// authentication.md). Big-endian, as the counter is on the wire:
//
//	bytes 0-1  marker: HMAC-SHA1(password, "carpd-marker" vhid source)[0:2]
//	byte  2    advbase as sent in clear
//	byte  3    advskew as sent in clear
//	byte  4    demote as sent in clear
//	bytes 5-7  sequence, 24 bits, compared in serial-number arithmetic
//
// The marker is keyed by the password and by the sender's own source
// address, so only a node with the password can make it, and a BSD or
// ucarp peer that copies carpd's counter (FreeBSD and ucarp send the last
// counter they heard plus one) sends it from its own address, where it is
// not a valid marker: its adverts stay BSD format.
const (
	seqBits = 24
	seqMask = 1<<seqBits - 1
	// seqHalf: a sequence is newer than another when it is ahead by less
	// than half the space (RFC 1982).
	seqHalf = 1 << (seqBits - 1)
	// seqUnit is the clock floor of the sequence: a sender's next
	// sequence is at least the wall clock in these units, so a restarted
	// carpd whose clock moved on continues above what it sent before,
	// without storing anything (8 adverts per second stay below it).
	seqUnit = time.Second / 8
)

// markerLabel separates the marker's HMAC input from the CARP message,
// which starts with 0x02 0x01.
const markerLabel = "carpd-marker"

var markerLabelBytes = []byte(markerLabel)

// CarpdCounter is the decoded carpd counter.
type CarpdCounter struct {
	Marker                   uint16
	AdvBase, AdvSkew, Demote uint8
	Seq                      uint32 // 24 bits
}

// EncodeCounter packs c into the 64-bit counter.
func EncodeCounter(c CarpdCounter) uint64 {
	return uint64(c.Marker)<<48 | uint64(c.AdvBase)<<40 | uint64(c.AdvSkew)<<32 |
		uint64(c.Demote)<<24 | uint64(c.Seq&seqMask)
}

// DecodeCounter splits any 64-bit counter into the carpd fields; whether it
// is one is for Auth.Marker and the clear timing to tell.
func DecodeCounter(v uint64) CarpdCounter {
	return CarpdCounter{Marker: uint16(v >> 48), AdvBase: uint8(v >> 40), AdvSkew: uint8(v >> 32),
		Demote: uint8(v >> 24), Seq: uint32(v) & seqMask}
}

// TimingMatches reports whether the timing in the counter is the timing a
// sent in clear.
func (c CarpdCounter) TimingMatches(a *Advert) bool {
	return c.AdvBase == a.AdvBase && c.AdvSkew == a.AdvSkew && c.Demote == a.Demote
}

// seqNewer reports whether sequence a is after b (serial arithmetic).
func seqNewer(a, b uint32) bool {
	d := (a - b) & seqMask
	return d != 0 && d < seqHalf
}

// seqMax returns the later of a and b.
func seqMax(a, b uint32) uint32 {
	if seqNewer(a, b) {
		return a
	}
	return b
}

// seqClock is the clock floor of the sequence at t.
func seqClock(t time.Time) uint32 {
	return uint32(t.UnixNano()/int64(seqUnit)) & seqMask
}

// Marker returns the counter marker of a carpd node sending from src on
// this vhid. It needs the Auth's own goroutine, like Sum.
func (au *Auth) Marker(src netip.Addr) uint16 {
	// The scratch arrays live in au: handed to the hash (an interface),
	// locals would escape, three allocations per advert sent.
	au.addr = src.WithZone("").Unmap().As16()
	au.vhid[0] = au.noLL[2]
	au.mac.Reset()
	au.mac.Write(markerLabelBytes)
	au.mac.Write(au.vhid[:])
	au.mac.Write(au.addr[:])
	au.mac.Sum(au.out[:0])
	return binary.BigEndian.Uint16(au.out[:2])
}

// markerEqual compares markers in constant time.
func markerEqual(a, b uint16) bool {
	var x, y [2]byte
	binary.BigEndian.PutUint16(x[:], a)
	binary.BigEndian.PutUint16(y[:], b)
	return hmac.Equal(x[:], y[:])
}
