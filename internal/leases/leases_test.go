package leases

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// A file as dnsmasq 2.89 writes it, with DHCPv6 leases and a non-Ethernet
// hardware address.
const sample = `1765200000 52:54:00:12:34:56 192.168.1.100 laptop 01:52:54:00:12:34:56
0 52:54:00:aa:bb:cc 192.168.1.101 * *
1765200100 06-aa:bb:cc:dd:ee:ff 192.168.1.102 printer.lan ff:00:00:00:01:00:01
1765200200 00- 192.168.1.103 * 01:02
duid 00:01:00:01:2c:11:22:33:52:54:00:00:00:01
1765200300 12345 fd00::100 phone 00:01:00:01:aa:bb:cc:dd
1765200400 T77 fd00::101 * 00:02:00:00:ab:11
`

func TestParseRoundTrip(t *testing.T) {
	f, bad := Parse([]byte(sample))
	if bad != 0 || len(f.Leases) != 4 {
		t.Fatalf("bad %d, leases %d", bad, len(f.Leases))
	}
	l := f.Leases[0]
	if l.Expiry != 1765200000 || l.HWType != 1 || l.HW != "\x52\x54\x00\x12\x34\x56" || l.Addr != netip.MustParseAddr("192.168.1.100") || l.Host != "laptop" || len(l.ClientID) != 7 {
		t.Fatalf("first lease %+v", l)
	}
	if f.Leases[2].HWType != 6 || f.Leases[3].HWType != 0 || f.Leases[3].HW != "" {
		t.Fatalf("hw types %+v %+v", f.Leases[2], f.Leases[3])
	}
	if f.Tail != sample[strings.Index(sample, "duid"):] {
		t.Fatalf("DHCPv6 part %q", f.Tail)
	}
	if got := f.Append(nil); string(got) != sample {
		t.Fatalf("written back:\n%s\nwant:\n%s", got, sample)
	}
}

func TestParseBadLines(t *testing.T) {
	for _, line := range []string{
		"x 52:54:00:12:34:56 192.168.1.100 a *",
		"1 52:54:00:12:34:5 192.168.1.100 a *",
		"1 52:54:00:12:34:56 192.168.1.300 a *",
		"1 52:54:00:12:34:56 fd00::1 a *",       // IPv6 before the duid line
		"1 52:54:00:12:34:56 192.168.1.1 a/b *", // not a host name
		"1 52:54:00:12:34:56 192.168.1.1 a * extra",
		"1 52:54:00:12:34:56 192.168.1.1 a 0g",
		"99999999999 52:54:00:12:34:56 192.168.1.1 a *",
	} {
		f, bad := Parse([]byte(line + "\n"))
		if bad != 1 || len(f.Leases) != 0 {
			t.Errorf("%q: bad %d leases %v", line, bad, f.Leases)
		}
	}
}

func lease(ip string, exp uint32, mac byte) Lease {
	return Lease{Expiry: exp, Addr: netip.MustParseAddr(ip), HWType: 1, HW: string([]byte{2, 0, 0, 0, 0, mac})}
}

func TestDiff(t *testing.T) {
	old := SetOf([]Lease{lease("10.0.0.1", 100, 1), lease("10.0.0.2", 100, 2), lease("10.0.0.3", 100, 3)})
	cur := SetOf([]Lease{lease("10.0.0.1", 100, 1), lease("10.0.0.2", 200, 2), lease("10.0.0.4", 100, 4)})
	ev := Diff(old, cur)
	want := []Event{{Renew, lease("10.0.0.2", 200, 2)}, {Release, lease("10.0.0.3", 100, 3)}, {Add, lease("10.0.0.4", 100, 4)}}
	if len(ev) != len(want) {
		t.Fatalf("events %v", ev)
	}
	for i := range ev {
		if ev[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, ev[i], want[i])
		}
	}
	// Applying the diff to old gives cur.
	for _, e := range ev {
		old.Apply(e)
	}
	if len(old) != len(cur) {
		t.Fatalf("applied: %v", old)
	}
	for a, l := range cur {
		if old[a] != l {
			t.Errorf("%v: %+v, want %+v", a, old[a], l)
		}
	}
}

func TestApplyLaterWins(t *testing.T) {
	s := SetOf([]Lease{lease("10.0.0.1", 500, 1), lease("10.0.0.2", 0, 2)})
	if s.Apply(Event{Renew, lease("10.0.0.1", 400, 9)}) {
		t.Error("an earlier expiry replaced a later one")
	}
	if s.Apply(Event{Renew, lease("10.0.0.2", 900, 2)}) {
		t.Error("a finite expiry replaced an infinite one")
	}
	if !s.Apply(Event{Renew, lease("10.0.0.1", 600, 1)}) || s[netip.MustParseAddr("10.0.0.1")].Expiry != 600 {
		t.Error("a later expiry was not taken")
	}
	if s.Apply(Event{Release, lease("10.0.0.1", 600, 7)}) {
		t.Error("another client's release removed the lease")
	}
	if s.Apply(Event{Release, lease("10.0.0.1", 550, 1)}) {
		t.Error("the release of an older lease removed a later one")
	}
	if !s.Apply(Event{Release, lease("10.0.0.1", 600, 1)}) || len(s) != 1 {
		t.Error("a release did not remove the lease")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("duid 00\n1 1 ::1 * *\n"))
	f.Add([]byte("1 ff- 10.0.0.1 * *\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, _ := Parse(b)
		for i := range file.Leases {
			if !file.Leases[i].Valid() {
				t.Fatalf("invalid lease parsed: %+v", file.Leases[i])
			}
		}
		// What we write, we read back the same.
		out := file.Append(nil)
		again, bad := Parse(out)
		if bad != 0 || !bytes.Equal(again.Append(nil), out) {
			t.Fatalf("round trip of %q: bad %d, %q", out, bad, again.Append(nil))
		}
	})
}
