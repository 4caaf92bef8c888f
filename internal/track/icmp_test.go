package track

import (
	"encoding/binary"
	"testing"

	"github.com/carpd/carpd/internal/carp"
)

// ipv4 wraps an ICMP message in a 20-byte IPv4 header.
func ipv4(icmp []byte) []byte {
	h := make([]byte, 20, 20+len(icmp))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(icmp)))
	h[8], h[9] = 64, 1
	return append(h, icmp...)
}

// asReply turns a request built by appendEchoRequest into the reply a
// host sends (type changed, checksum fixed for IPv4).
func asReply(req []byte, v6 bool) []byte {
	b := append([]byte(nil), req...)
	if v6 {
		b[0] = icmp6EchoReply
		return b
	}
	b[0] = icmp4EchoReply
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], carp.Checksum(b))
	return b
}

func TestParseEchoReply(t *testing.T) {
	req4 := appendEchoRequest(nil, false, 0x1234, 7, 0xdeadbeefcafef00d)
	if carp.Checksum(req4) != 0 {
		t.Fatal("request checksum wrong")
	}
	e, err := parseEchoReply(ipv4(asReply(req4, false)), false)
	if err != nil || e != (echo{id: 0x1234, seq: 7, nonce: 0xdeadbeefcafef00d}) {
		t.Fatalf("v4: %+v %v", e, err)
	}
	req6 := appendEchoRequest(nil, true, 0x4321, 9, 42)
	e, err = parseEchoReply(asReply(req6, true), true)
	if err != nil || e != (echo{id: 0x4321, seq: 9, nonce: 42}) {
		t.Fatalf("v6: %+v %v", e, err)
	}

	bad := ipv4(asReply(req4, false))
	bad[30] ^= 1 // a payload bit: checksum
	opts := ipv4(asReply(req4, false))
	opts[0] = 0x46 // claims 24 bytes of header: the ICMP message is misframed
	for name, c := range map[string]struct {
		b    []byte
		v6   bool
		want string
	}{
		"empty":        {nil, false, dropShort},
		"v6 short":     {[]byte{129, 0, 0}, true, dropShort},
		"not v4":       {append([]byte{0x65}, ipv4(asReply(req4, false))[1:]...), false, dropIPHeader},
		"not icmp":     {func() []byte { b := ipv4(asReply(req4, false)); b[9] = 17; return b }(), false, dropIPHeader},
		"checksum":     {bad, false, dropChecksum},
		"misframed":    {opts, false, dropChecksum},
		"request":      {ipv4(req4), false, dropNotReply},
		"v6 request":   {req6, true, dropNotReply},
		"long total":   {func() []byte { b := ipv4(asReply(req4, false)); b[3] += 10; return b }(), false, dropShort},
		"ihl too long": {func() []byte { b := ipv4(asReply(req4, false))[:22]; b[0] = 0x4f; return b }(), false, dropIPHeader},
	} {
		if _, err := parseEchoReply(c.b, c.v6); err == nil || err.Error() != c.want {
			t.Errorf("%s: error %v, want %s", name, err, c.want)
		}
	}
	// An echo reply of another pinger without carpd's payload: the id
	// comes back for the caller's wrong_id count.
	short := asReply(appendEchoRequest(nil, true, 5, 1, 0)[:8], true)
	if e, err := parseEchoReply(short, true); err != errShortPayload || e.id != 5 {
		t.Fatalf("short payload: %+v %v", e, err)
	}
}

// FuzzParseEchoReply: the decoder of what raw ICMP sockets receive never
// panics, and what it accepts re-encodes to the same message.
func FuzzParseEchoReply(f *testing.F) {
	req4 := appendEchoRequest(nil, false, 0x1234, 7, 0xdeadbeefcafef00d)
	f.Add(ipv4(asReply(req4, false)), false)
	f.Add(asReply(appendEchoRequest(nil, true, 1, 2, 3), true), true)
	f.Add(ipv4(req4), false)
	f.Add([]byte{0x45}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		e, err := parseEchoReply(b, v6)
		if err != nil {
			return
		}
		msg := b
		if !v6 {
			var err error
			if msg, err = icmp4Message(b); err != nil || carp.Checksum(msg) != 0 {
				t.Fatalf("accepted %x (framing %v, checksum %x)", b, err, carp.Checksum(msg))
			}
		}
		want := byte(icmp4EchoReply)
		if v6 {
			want = icmp6EchoReply
		}
		if len(msg) < echoLen || msg[0] != want || msg[1] != 0 ||
			binary.BigEndian.Uint16(msg[4:]) != e.id || binary.BigEndian.Uint16(msg[6:]) != e.seq ||
			binary.BigEndian.Uint64(msg[8:]) != e.nonce {
			t.Fatalf("accepted %x as %+v", b, e)
		}
	})
}
