package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"hash"
	"net/netip"
	"slices"
	"sort"
)

// KeyLen is CARP_KEY_LEN: the BSD kernels keep the passphrase in a 20-byte
// buffer, NUL-terminated, so at most 19 bytes of it count
// (docs/carp-protocol.md#hmac).
const KeyLen = 20

// Auth computes and checks the HMAC-SHA1 of advertisements for one virtual
// host. The message is (docs/carp-protocol.md#hmac):
//
//	0x02 0x01 vhid  sorted IPv4 VIPs  sorted IPv6 VIPs  counter(8)
//
// On send link-local IPv6 VIPs are left out (OpenBSD "NOV6LL"); on receive
// both the variant without and the variant with them are accepted (OpenBSD
// accepts either; FreeBSD includes them). A link-local address enters as the
// BSD kernels hash it: their in-kernel form carries the interface index in
// bytes 2-3, which they clear first, so those bytes count as zero (fe80:7::1
// hashes as fe80::1) and the order and duplicates are those after clearing.
// An Auth is not safe for concurrent use: it belongs to the goroutine that
// owns its vhid.
type Auth struct {
	noLL  []byte // version, type, vhid, addresses without link-local
	withL []byte // the same with link-local IPv6 addresses; nil if none
	mac   hash.Hash
	// Scratch space of sum: passed to mac (an interface), a local array
	// would escape and cost an allocation per advert sent or checked.
	ctr  [8]byte
	out  [sha1.Size]byte
	addr [16]byte // Marker's
	vhid [1]byte  // Marker's
}

// NewAuth prepares the HMAC for a virtual host. The password is truncated to
// 19 bytes exactly as the BSDs do; config validation refuses longer ones so
// that nobody relies on the truncation by accident.
func NewAuth(password string, vhid uint8, addrs []netip.Addr) *Auth {
	var key [KeyLen]byte
	copy(key[:KeyLen-1], password)
	var v4, v6 []netip.Addr
	hasLL := false
	for _, a := range addrs {
		a = a.WithZone("")
		switch {
		case a.Is4() || a.Is4In6():
			a = a.Unmap()
			if a == netip.IPv4Unspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
				continue
			}
			v4 = append(v4, a)
		case a.Is6():
			if a.IsLinkLocalUnicast() {
				hasLL = true
				b := a.As16()
				b[2], b[3] = 0, 0
				a = netip.AddrFrom16(b)
			}
			v6 = append(v6, a)
		}
	}
	// Both families sort bytewise ascending, which for IPv4 is numeric order.
	sort.Slice(v4, func(i, j int) bool { return v4[i].Less(v4[j]) })
	v4 = slices.Compact(v4)
	sort.Slice(v6, func(i, j int) bool { return v6[i].Less(v6[j]) })
	v6 = slices.Compact(v6)

	build := func(withLL bool) []byte {
		m := []byte{Version, TypeAdvertisement, vhid}
		for _, a := range v4 {
			m = append(m, a.AsSlice()...)
		}
		for _, a := range v6 {
			if !withLL && a.IsLinkLocalUnicast() {
				continue
			}
			m = append(m, a.AsSlice()...)
		}
		return m
	}
	au := &Auth{noLL: build(false), mac: hmac.New(sha1.New, key[:])}
	if hasLL {
		au.withL = build(true)
	}
	return au
}

// Sum returns the HMAC to send with the given counter.
func (au *Auth) Sum(counter uint64) [sha1.Size]byte {
	return au.sum(au.noLL, counter)
}

// Verify reports whether mac authenticates an advert with this counter.
func (au *Auth) Verify(counter uint64, mac [sha1.Size]byte) bool {
	want := au.sum(au.noLL, counter)
	if hmac.Equal(want[:], mac[:]) {
		return true
	}
	if au.withL != nil {
		want = au.sum(au.withL, counter)
		return hmac.Equal(want[:], mac[:])
	}
	return false
}

// Message returns the bytes fed to the HMAC on send, for tests and debugging.
func (au *Auth) Message(counter uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(au.noLL), counter)
}

func (au *Auth) sum(prefix []byte, counter uint64) [sha1.Size]byte {
	binary.BigEndian.PutUint64(au.ctr[:], counter)
	au.mac.Reset()
	au.mac.Write(prefix)
	au.mac.Write(au.ctr[:])
	au.mac.Sum(au.out[:0])
	return au.out
}
