package leases

import (
	"bytes"
	"fmt"
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

// TestKeepsOtherLines: lines that do not parse, and those after
// MaxLeases leases, are kept as they are by a rewrite (after the leases,
// before the DHCPv6 part).
func TestKeepsOtherLines(t *testing.T) {
	in := "1800003600 52:54:00:00:00:01 10.0.0.5 a *\n" +
		"this is not a lease\n" +
		"1800003600 52:54:00:00:00:02 10.0.0.6 b *\n" +
		"1800003600 52:54:00:00:00:03 10.0.0.7 host_with space *\n" +
		"duid 00:01\n"
	f, bad := Parse([]byte(in))
	if bad != 2 || len(f.Leases) != 2 || len(f.Other) != 2 {
		t.Fatalf("bad %d, leases %d, other %q", bad, len(f.Leases), f.Other)
	}
	want := "1800003600 52:54:00:00:00:01 10.0.0.5 a *\n1800003600 52:54:00:00:00:02 10.0.0.6 b *\n" +
		"this is not a lease\n1800003600 52:54:00:00:00:03 10.0.0.7 host_with space *\nduid 00:01\n"
	if got := string(f.Append(nil)); got != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	var big []byte
	for i := range MaxLeases + 1 {
		big = append(big, fmt.Sprintf("0 52:54:00:00:%02x:%02x 10.1.%d.%d * *\n", i>>8&255, i&255, i>>8&255, i&255)...)
	}
	f, _ = Parse(big)
	if len(f.Leases) != MaxLeases || len(f.Other) != 1 || !bytes.Equal(f.Append(nil), big) {
		t.Errorf("past MaxLeases: %d leases, other %q", len(f.Leases), f.Other)
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
		// What we write, we read back the same, the lines we cannot read
		// included.
		out := file.Append(nil)
		again, _ := Parse(out)
		if !bytes.Equal(again.Append(nil), out) || len(again.Leases) != len(file.Leases) || strings.Join(again.Other, "\n") != strings.Join(file.Other, "\n") {
			t.Fatalf("round trip of %q: %q", out, again.Append(nil))
		}
	})
}
