package carp

import (
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TV1 (docs/carp-protocol.md#test-vectors): a real ucarp advertisement.
const tv1Frame = "01005e000012 00005e00002a 0800 4510003853644000ff703d6b0a630001e0000012 212a0007 0001 a712 b2d682fbedad6722 37d782d82c0c072d5efca6474b7871cbdc772030"

func TestAdvertDecodeTV1(t *testing.T) {
	b := unhex(t, tv1Frame)[14+20:]
	var a Advert
	if err := a.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	want := Advert{Version: 2, Type: 1, VHID: 42, AdvSkew: 0, AuthLen: 7, Demote: 0, AdvBase: 1,
		Checksum: 0xa712, Counter: 0xb2d682fbedad6722}
	copy(want.HMAC[:], unhex(t, "37d782d82c0c072d5efca6474b7871cbdc772030"))
	if diff := cmp.Diff(want, a); diff != "" {
		t.Fatalf("decode (-want +got):\n%s", diff)
	}
	out, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(out, b) {
		t.Fatalf("re-encode:\n got %x\nwant %x", out, b)
	}
	au := NewAuth("love", 42, []netip.Addr{netip.MustParseAddr("10.99.0.252")})
	if got, want := hex.EncodeToString(au.Message(a.Counter)), "02012a0a6300fcb2d682fbedad6722"; got != want {
		t.Errorf("HMAC message %s, want %s", got, want)
	}
	if !au.Verify(a.Counter, a.HMAC) {
		t.Error("HMAC of TV1 does not verify")
	}
}

func TestAdvertDecodeTV2(t *testing.T) {
	b := unhex(t, "210700070001c179 aabbccdd00000002 d4c78a59545f7700104b4cb60ec1a8a9adfcb8f1")
	var a Advert
	if err := a.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	au := NewAuth("secret", 7, []netip.Addr{netip.MustParseAddr("10.99.0.250")})
	if !au.Verify(a.Counter, a.HMAC) {
		t.Error("HMAC of TV2 does not verify")
	}
	if NewAuth("Secret", 7, []netip.Addr{netip.MustParseAddr("10.99.0.250")}).Verify(a.Counter, a.HMAC) {
		t.Error("a wrong password verified")
	}
}

func TestHMACVectors(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	tests := []struct {
		name    string
		pass    string
		vhid    uint8
		addrs   []netip.Addr
		counter uint64
		sendMAC string // HMAC we send
		alsoOK  string // another HMAC Verify must accept ("" = none)
	}{
		{
			// TV3: several v4 given unsorted, one v6.
			name: "TV3", pass: "mekmitasdigoat", vhid: 1,
			addrs:   addrs("192.168.1.10", "2001:db8::1", "10.0.0.1"),
			counter: 0x0102030405060708,
			sendMAC: "8b4d581aeb5fd0d252dd1fbf729713202c1c025f",
		},
		{
			// TV3 with a link-local VIP: OpenBSD sends without it (the TV3
			// digest) and accepts the FreeBSD variant that includes it.
			name: "TV3+LL", pass: "mekmitasdigoat", vhid: 1,
			addrs:   addrs("192.168.1.10", "10.0.0.1", "fe80::1", "2001:db8::1"),
			counter: 0x0102030405060708,
			sendMAC: "8b4d581aeb5fd0d252dd1fbf729713202c1c025f",
			alsoOK:  "5916b55cad43eba7ead1ff6317154f41b325fab7",
		},
		{
			name: "TV4 truncation", pass: "0123456789abcdefghijXYZ", vhid: 200,
			addrs: addrs("198.51.100.7"), counter: 0xffffffffffffffff,
			sendMAC: "eac01bee92656642418b5a9a558fb3796690cecd",
		},
		{
			name: "TV4 19-byte key", pass: "0123456789abcdefghi", vhid: 200,
			addrs: addrs("198.51.100.7"), counter: 0xffffffffffffffff,
			sendMAC: "eac01bee92656642418b5a9a558fb3796690cecd",
		},
		{
			name: "TV5 no password", pass: "", vhid: 5,
			addrs: addrs("192.0.2.1"), counter: 0,
			sendMAC: "612ff303f7ad129672ec4f44e4cdbe5bfce6babd",
		},
		{
			name: "duplicates removed", pass: "", vhid: 5,
			addrs: addrs("192.0.2.1", "192.0.2.1"), counter: 0,
			sendMAC: "612ff303f7ad129672ec4f44e4cdbe5bfce6babd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			au := NewAuth(tt.pass, tt.vhid, tt.addrs)
			got := au.Sum(tt.counter)
			if hex.EncodeToString(got[:]) != tt.sendMAC {
				t.Fatalf("Sum = %x, want %s", got, tt.sendMAC)
			}
			if !au.Verify(tt.counter, got) {
				t.Error("Verify rejects our own Sum")
			}
			if tt.alsoOK != "" {
				var m [20]byte
				copy(m[:], unhex(t, tt.alsoOK))
				if !au.Verify(tt.counter, m) {
					t.Error("Verify rejects the with-link-local variant")
				}
			}
			if au.Verify(tt.counter+1, got) {
				t.Error("Verify accepts a digest for another counter")
			}
		})
	}
}

// TestCaptures replays every CARP packet of the real ucarp captures: each
// must decode, re-encode to the same bytes and carry TTL 255.
func TestCaptures(t *testing.T) {
	total := 0
	for _, path := range captures(t) {
		n := 0
		for _, f := range readPcap(t, path) {
			p, src, ttl, ok := carpPayload(f)
			if !ok {
				continue
			}
			n++
			var a Advert
			if err := a.UnmarshalBinary(p); err != nil {
				t.Errorf("%s: packet %d from %s: %v", path, n, ipString(src), err)
				continue
			}
			if ttl != TTL {
				t.Errorf("%s: TTL %d", path, ttl)
			}
			out, _ := a.MarshalBinary()
			if !cmp.Equal(out, p) {
				t.Errorf("%s: re-encode differs:\n got %x\nwant %x", path, out, p)
			}
		}
		if n == 0 {
			t.Errorf("%s: no CARP packet", path)
		}
		total += n
	}
	t.Logf("%d CARP packets replayed", total)
}

// TestCaptureHMAC checks the HMAC of every packet of the two captures whose
// configuration is known (vhid, password and VIP below).
func TestCaptureHMAC(t *testing.T) {
	cfg := map[string]*Auth{
		"testdata/ucarp_vhid42_love.pcap": NewAuth("love", 42, []netip.Addr{netip.MustParseAddr("10.99.0.252")}),
		"testdata/testA.pcap":             NewAuth("secret", 7, []netip.Addr{netip.MustParseAddr("10.99.0.250")}),
	}
	for path, au := range cfg {
		n := 0
		for _, f := range readPcap(t, path) {
			p, src, _, ok := carpPayload(f)
			if !ok {
				continue
			}
			var a Advert
			if err := a.UnmarshalBinary(p); err != nil {
				t.Fatal(err)
			}
			if !au.Verify(a.Counter, a.HMAC) {
				t.Errorf("%s: advert from %s counter %x: HMAC does not verify", path, ipString(src), a.Counter)
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s: no CARP packet", path)
		}
	}
}

func TestAdvertErrors(t *testing.T) {
	good, _ := (&Advert{Version: 2, Type: 1, VHID: 3, AuthLen: 7, AdvBase: 1}).MarshalBinary()
	badSum := append([]byte(nil), good...)
	badSum[offAdvSkew] ^= 1
	v3 := append([]byte(nil), good...)
	v3[0] = 0x31
	v3[offChecksum], v3[offChecksum+1] = 0, 0
	s := Checksum(v3)
	v3[offChecksum], v3[offChecksum+1] = byte(s>>8), byte(s)

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short", good[:35], ErrBadLength},
		{"long", append(append([]byte(nil), good...), 0), ErrBadLength},
		{"checksum", badSum, ErrBadChecksum},
		{"version 3", v3, ErrBadVersion},
	}
	for _, tt := range tests {
		var a Advert
		if err := a.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestChecksumOdd(t *testing.T) {
	// RFC 1071 example words plus an odd trailing byte.
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x01}); got != ^uint16(0xddf2+0x0100) {
		t.Errorf("Checksum = %#x", got)
	}
}

func BenchmarkAdvertMarshal(b *testing.B) {
	a := Advert{Version: 2, Type: 1, VHID: 1, AuthLen: 7, AdvBase: 1}
	au := NewAuth("secret", 1, []netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("fd00::1")})
	buf := make([]byte, 0, HeaderLen)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.Counter = uint64(i)
		a.HMAC = au.Sum(a.Counter)
		buf, _ = a.AppendBinary(buf[:0])
	}
}

func BenchmarkAdvertVerify(b *testing.B) {
	au := NewAuth("secret", 1, []netip.Addr{netip.MustParseAddr("192.168.1.1")})
	a := Advert{Version: 2, Type: 1, VHID: 1, AuthLen: 7, AdvBase: 1, Counter: 9}
	a.HMAC = au.Sum(9)
	p, _ := a.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		var d Advert
		if err := d.UnmarshalBinary(p); err != nil || !au.Verify(d.Counter, d.HMAC) {
			b.Fatal("verify failed")
		}
	}
}
