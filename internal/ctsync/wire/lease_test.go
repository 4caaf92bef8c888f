package wire

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/leases"
)

func leaseRecords() []Record {
	mac := "\x52\x54\x00\x12\x34\x56"
	return []Record{
		{Type: RecordLease, Lease: leases.Event{Op: leases.Add, Lease: leases.Lease{Expiry: 1765200000, Addr: netip.MustParseAddr("192.168.1.100"), HWType: 1, HW: mac, Host: "laptop", ClientID: "\x01" + mac}}},
		{Type: RecordLease, Lease: leases.Event{Op: leases.Renew, Lease: leases.Lease{Addr: netip.MustParseAddr("192.168.1.101"), HWType: 1, HW: mac}}},
		{Type: RecordLease, Lease: leases.Event{Op: leases.Release, Lease: leases.Lease{Expiry: 7, Addr: netip.MustParseAddr("10.1.2.3"), HWType: 6, HW: "ab", ClientID: "\xff\x00\x01"}}},
		{Type: RecordLease, Lease: leases.Event{Op: leases.Add, Lease: leases.Lease{Expiry: 1765200300, Addr: netip.MustParseAddr("10.0.0.9"), HWType: 1, HW: mac, Host: "phone.lan", ClientID: "\x02" + mac}}},
	}
}

func TestLeaseRoundTrip(t *testing.T) {
	recs := leaseRecords()
	b := mustAppend(t, recs)
	got, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(recs, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// The usual lease (Ethernet, client id 01+MAC, 8-byte host name)
	// is compact: 1 type, 1 length, 1 flags, 4 expiry, 4 address,
	// 2+6 hardware address, 1+8 host name, 1 client id length.
	one := mustAppend(t, []Record{{Type: RecordLease, Lease: leases.Event{Lease: leases.Lease{Expiry: 1, Addr: netip.MustParseAddr("10.0.0.1"), HWType: 1, HW: "123456", Host: "abcdefgh", ClientID: "\x01123456"}}}})
	if len(one) != 29 {
		t.Errorf("usual lease: %d bytes, want 29", len(one))
	}
	// The largest lease fits the contract's 300 bytes.
	big := leases.Lease{Addr: netip.MustParseAddr("10.0.0.1"), HWType: 1, HW: strings.Repeat("m", leases.MaxHW), Host: strings.Repeat("h", leases.MaxHost), ClientID: strings.Repeat("c", leases.MaxClientID)}
	if bb := mustAppend(t, []Record{{Type: RecordLease, Lease: leases.Event{Lease: big}}}); len(bb) > MaxLeaseRecord {
		t.Errorf("largest lease: %d bytes, limit %d", len(bb), MaxLeaseRecord)
	}
}

func TestLeaseRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		hex  string
	}{
		{"empty body", "11 00"},
		{"body past the stream", "11 0d 00 00000001 0a000001"},
		{"op 3", "11 0d 03 00000001 0a000001 01 00 00 00"},
		{"reserved flag", "11 0d 80 00000001 0a000001 01 00 00 00"},
		{"host name with a blank", "11 0e 00 00000001 0a000001 01 00 01 20 00"},
		{"client id 01+MAC without a MAC", "11 0d 04 00000001 0a000001 01 00 00 00"},
		{"both client id forms", "11 0f 04 00000001 0a000001 01 01 aa 00 01 bb"},
		{"hardware address too long", "11 22 00 00000001 0a000001 01 15 " + strings.Repeat("aa", 21) + " 00 00"},
		{"field past the body", "11 0c 00 00000001 0a000001 01 00 00 00"},
		{"body over the limit", "11 ab02"},
		{"body length past the frame, its fields complete", "11 14 00 00000001 0a000001 01 00 00 00"},
	} {
		_, err := decodeAll(mustHex(t, c.hex))
		if err == nil || !errors.Is(err, ErrLease) && !errors.Is(err, ErrLeaseSize) {
			t.Errorf("%s: %v, want %v", c.name, err, ErrLease)
		}
	}
	// A later version's field after the known ones is skipped.
	got, err := decodeAll(mustHex(t, "11 0e 00 00000001 0a000001 01 00 00 00 ff 00"))
	if err != nil || len(got) != 2 || got[0].Type != RecordLease || got[1].Type != RecordPing {
		t.Fatalf("lease with a later field: %v %+v", err, got)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
