package carp

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// TestCounterLayout: the carpd counter's fields sit where the doc says, in
// wire (big-endian) order, and decode back.
func TestCounterLayout(t *testing.T) {
	c := CarpdCounter{Marker: 0xbeef, AdvBase: 1, AdvSkew: 100, Demote: 3, Seq: 0x123456}
	v := EncodeCounter(c)
	if v != 0xbeef_01_64_03_123456 {
		t.Fatalf("encoded %016x", v)
	}
	if got := DecodeCounter(v); got != c {
		t.Fatalf("decoded %+v, want %+v", got, c)
	}
	c.Seq = 0xff123456 // only 24 bits are carried
	if got := DecodeCounter(EncodeCounter(c)); got.Seq != 0x123456 || got.Demote != 3 {
		t.Fatalf("sequence overflowed into demote: %+v", got)
	}
}

// TestMarkerVector pins the marker: HMAC-SHA1(key, "carpd-marker" vhid
// src16)[0:2], with the key as the BSDs pad it. The value was computed
// independently with Python's hmac module.
func TestMarkerVector(t *testing.T) {
	au := NewAuth("secret", 7, []netip.Addr{netip.MustParseAddr("10.0.0.1")})
	for _, tc := range []struct {
		src  string
		want uint16
	}{
		{"10.0.0.3", markerVec4},
		{"fe80::3", markerVec6},
	} {
		if got := au.Marker(netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("marker of %s = %04x, want %04x", tc.src, got, tc.want)
		}
	}
	// The IPv4-mapped form and a zone do not change the marker.
	if au.Marker(netip.MustParseAddr("::ffff:10.0.0.3")) != markerVec4 ||
		au.Marker(netip.MustParseAddr("fe80::3%eth0")) != markerVec6 {
		t.Error("marker depends on the address's spelling")
	}
	// The whole advert of a carpd node at 10.0.0.3, sequence 0x000102.
	a := Advert{Version: 2, Type: 1, VHID: 7, AuthLen: 7, AdvBase: 1, AdvSkew: 100,
		Counter: EncodeCounter(CarpdCounter{Marker: markerVec4, AdvBase: 1, AdvSkew: 100, Seq: 0x102})}
	a.HMAC = au.Sum(a.Counter)
	b, _ := a.MarshalBinary()
	if got := hex.EncodeToString(b); got != advertVec {
		t.Errorf("advert %s\n want %s", got, advertVec)
	}
}

// Vectors of TestMarkerVector, from Python:
//
//	k = b"secret" + bytes(14)
//	hmac.new(k, b"carpd-marker" + bytes([7]) + bytes(10) + b"\xff\xff" + bytes([10,0,0,3]), "sha1").hexdigest()[:4]
//	hmac.new(k, b"carpd-marker" + bytes([7]) + bytes.fromhex("fe80"+"00"*13+"03"), "sha1").hexdigest()[:4]
//	hmac.new(k, bytes([2,1,7,10,0,0,1]) + counter, "sha1")
const (
	markerVec4 = 0xa911
	markerVec6 = 0x7a7c
	advertVec  = "210764070001ae68a9110164000001022c87487e411fa3f8ea498756345f78f19aa70d5a"
)

func TestSeqSerial(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false},
		{0, seqMask, true}, {seqMask, 0, false}, // wrap
		{seqHalf - 1, 0, true}, {seqHalf, 0, false},
	} {
		if got := seqNewer(tc.a, tc.b); got != tc.want {
			t.Errorf("seqNewer(%#x, %#x) = %v", tc.a, tc.b, got)
		}
	}
}

// TestSeqLamport: a node that heard a peer's sequence sends above it, so a
// restarted node whose clock is behind continues above its old sequence
// once it heard the peer that took over.
func TestSeqLamport(t *testing.T) {
	var g rxGuard
	g.auth = NewAuth("secret", 7, nil)
	g.secure = true
	g.peers = map[netip.Addr]*seqPeer{}
	now := time.Now()
	ahead := (seqClock(now) + 5000) & seqMask
	peer := netip.MustParseAddr("10.0.0.3")
	a := Advert{AdvBase: 1,
		Counter: EncodeCounter(CarpdCounter{Marker: g.auth.Marker(peer), AdvBase: 1, Seq: ahead})}
	var d dropCounters
	if why := g.checkCounter(&a, peer, now, &d); why != "" {
		t.Fatal(why)
	}
	if got := g.nextSeq(now); got != (ahead+1)&seqMask {
		t.Fatalf("next sequence %#x, want %#x", got, ahead+1)
	}
	// A silent source is forgotten after seqPeerExpiry.
	if why := g.checkCounter(&a, peer, now.Add(seqPeerExpiry+time.Second), &d); why != "" {
		t.Fatalf("expired source still checked: %s", why)
	}
}

// TestSeqAcrossRestart: a node that advertised once per second for a while
// and restarts (a fresh guard, nothing stored) continues above its last
// sequence as long as its clock moved on, even by a fraction of a second;
// at 8 adverts per second it keeps pace with the clock floor.
func TestSeqAcrossRestart(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, every := range []time.Duration{time.Second, seqUnit} {
		var g rxGuard
		now := t0
		var last uint32
		for range 1000 {
			last = g.nextSeq(now)
			now = now.Add(every)
		}
		var restarted rxGuard
		first := restarted.nextSeq(now.Add(seqUnit))
		if !seqNewer(first, last) {
			t.Errorf("advert every %v: first sequence %#x after restart not above %#x", every, first, last)
		}
	}
}
