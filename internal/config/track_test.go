package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestValidateTracks: rules a hand-built config (the daemon's tests, a
// future LuCI writer) can break that the UCI parser cannot express, such
// as two trackers of one name.
func TestValidateTracks(t *testing.T) {
	c := Default()
	ping := DefaultTrack("wan")
	ping.Type, ping.Timeout = TrackPing, time.Second
	ping.Targets = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	c.Tracks = []Track{ping, ping}
	bad := DefaultTrack("x")
	bad.Type, bad.Timeout, bad.Process, bad.Weight, bad.Group, bad.Up = TrackProcess, time.Second, "p", 0, "", 0
	c.Tracks = append(c.Tracks, bad)
	file := DefaultTrack("f")
	file.Type, file.Timeout, file.Path, file.Weight = TrackFile, time.Second, "/tmp/x", 0 // weight unused
	c.Tracks = append(c.Tracks, file)
	c.VHIDs = []VHID{{Name: "lan", Interface: "eth0", VHID: 1, AdvBase: 1, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Groups: []string{"wan", "much-too-long-group"}}}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Error())
	}
	want := []string{
		`section "lan" option "group": "much-too-long-group" is not a group name: 1-15 of A-Z a-z 0-9 _ -`,
		`section "wan": a second tracker is called "wan"`,
		`section "x" option "up": must be 1-1000, not 0`,
		`section "x" option "group": "" is not a group name: 1-15 of A-Z a-z 0-9 _ -`,
		`section "x" option "weight": must be 1-255, not 0`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidGroup(t *testing.T) {
	for _, g := range []string{"carp", "wan", "WAN_2", "a-b", "123456789012345"} {
		if !ValidGroup(g) {
			t.Errorf("%q rejected", g)
		}
	}
	for _, g := range []string{"", "1234567890123456", "a b", "a.b", "wän", "a/b"} {
		if ValidGroup(g) {
			t.Errorf("%q accepted", g)
		}
	}
}
