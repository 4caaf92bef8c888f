package lab

import (
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests need no privileges.

// *testing.T and *testing.B are what callers hand to Cleanup and Require.
var (
	_ TB = (*testing.T)(nil)
	_ TB = (*testing.B)(nil)
)

// TestNoTestingImport: bench and internal/lab/demo link lab into ordinary binaries,
// which must not pull in the testing package and its flags.
func TestNoTestingImport(t *testing.T) {
	for _, goos := range []string{"linux", "freebsd"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if imp == "testing" {
				t.Errorf("GOOS=%s: lab imports testing from non-test code", goos)
			}
		}
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// recs builds records 10 ms apart from a pattern: '+' answered, '-' lost.
	recs := func(pattern string) []probeRecord {
		var rs []probeRecord
		for i, c := range pattern {
			r := probeRecord{sent: at(10 * i)}
			if c == '+' {
				r.recv = r.sent.Add(time.Millisecond)
			}
			rs = append(rs, r)
		}
		return rs
	}
	tests := []struct {
		pattern string
		want    ProbeResult
	}{
		{"", ProbeResult{}},
		{"+++", ProbeResult{Sent: 3, Received: 3}},
		{"++---++", ProbeResult{Sent: 7, Received: 4, Lost: 3, Outages: []Outage{
			{Start: at(10), End: at(50), Duration: 40 * time.Millisecond, Lost: 3},
		}}},
		{"--+-+", ProbeResult{Sent: 5, Received: 2, Lost: 3, Outages: []Outage{
			{Start: at(0), End: at(20), Duration: 20 * time.Millisecond, Lost: 2},
			{Start: at(20), End: at(40), Duration: 20 * time.Millisecond, Lost: 1},
		}}},
		{"++--", ProbeResult{Sent: 4, Received: 2, Lost: 2, Outages: []Outage{
			{Start: at(10), End: at(30), Duration: 20 * time.Millisecond, Lost: 2, Open: true},
		}}},
		{"---", ProbeResult{Sent: 3, Lost: 3, Outages: []Outage{
			{Start: at(0), End: at(20), Duration: 20 * time.Millisecond, Lost: 3, Open: true},
		}}},
	}
	for _, tt := range tests {
		got := summarize(recs(tt.pattern))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("summarize(%q) mismatch (-want +got):\n%s", tt.pattern, diff)
		}
	}
	if got := summarize(recs("+-+---+")).Longest(); got != 40*time.Millisecond {
		t.Errorf("Longest = %v, want 40ms", got)
	}
}

func TestRing(t *testing.T) {
	r := &ring{max: 8}
	r.Write([]byte("abc"))
	r.Write([]byte("defg"))
	if got := r.String(); got != "abcdefg" {
		t.Errorf("ring = %q", got)
	}
	r.Write([]byte("hij"))
	if got := r.String(); !strings.HasSuffix(got, "\ncdefghij") || !strings.Contains(got, "2 bytes dropped") {
		t.Errorf("ring = %q", got)
	}
	r.Write([]byte("0123456789"))
	if got := r.String(); !strings.HasSuffix(got, "\n23456789") || !strings.Contains(got, "12 bytes dropped") {
		t.Errorf("ring = %q", got)
	}
}

func TestSysctlPath(t *testing.T) {
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.10/arp_ignore": "/proc/sys/net/ipv4/conf/eth0.10/arp_ignore",
		"net/../../../etc/passwd":          "/proc/sys/etc/passwd",
	} {
		if got := sysctlPath(key); got != want {
			t.Errorf("sysctlPath(%q) = %q, want %q", key, got, want)
		}
	}
}
