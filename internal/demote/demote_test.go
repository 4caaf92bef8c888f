package demote

import (
	"math"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 8, 12, 3, 1, 0, time.UTC)

func TestCounterAndSum(t *testing.T) {
	var tb Table
	if rose := tb.Set("carp", "link:eth0", 1, "link down", t0, 0); !rose {
		t.Error("carp 0 → 1: want rose")
	}
	if rose := tb.Set("carp", "link:eth1", 1, "link down", t0, 0); rose {
		t.Error("carp 1 → 2: not a rise from 0")
	}
	if rose := tb.Set("wan", "wan_ping", 2, "0 of 1 targets answered", t0, 0); !rose {
		t.Error("wan 0 → 2: want rose")
	}
	tb.Set("", "manual", 5, "per vhid", t0, 0)
	for _, tc := range []struct {
		groups []string
		want   int
	}{
		{[]string{"carp"}, 2},
		{[]string{"carp", "wan"}, 4},
		{[]string{"carp", "wan", "wan"}, 4}, // a group counts once
		{[]string{"carp", "lan"}, 2},
		{[]string{"lan"}, 0},
		{[]string{"carp", "wan", ""}, 9},
		{nil, 0},
	} {
		if got := tb.Sum(tc.groups); got != tc.want {
			t.Errorf("Sum(%q) = %d, want %d", tc.groups, got, tc.want)
		}
	}
	if got := tb.Groups(); !slices.Equal(got, []string{"", "carp", "wan"}) {
		t.Errorf("groups %q", got)
	}
	var names []string
	for _, s := range tb.Sources([]string{"wan", "carp"}) {
		names = append(names, s.Group+"/"+s.Name)
	}
	if !slices.Equal(names, []string{"wan/wan_ping", "carp/link:eth0", "carp/link:eth1"}) {
		t.Errorf("sources %q", names)
	}
}

// TestRemoveAtZero: a source set to 0 (or below) is gone, and so is its
// group when it was the last; setting it again is a rise from 0.
func TestRemoveAtZero(t *testing.T) {
	var tb Table
	tb.Set("wan", "a", 1, "", t0, 0)
	tb.Set("wan", "b", 1, "", t0, 0)
	tb.Set("wan", "a", 0, "", t0, 0)
	if _, ok := tb.Get("wan", "a"); ok {
		t.Error("a is still there at 0")
	}
	if tb.Counter("wan") != 1 {
		t.Errorf("wan counter %d", tb.Counter("wan"))
	}
	tb.Set("wan", "b", -3, "", t0, 0)
	if len(tb.Groups()) != 0 || tb.Sources(nil) != nil {
		t.Errorf("empty table has groups %q, sources %v", tb.Groups(), tb.Sources(nil))
	}
	if !tb.Set("wan", "b", 1, "", t0, 0) {
		t.Error("wan back from 0: want rose")
	}
	if tb.Set("wan", "nothing", 0, "", t0, 0) {
		t.Error("setting 0 is never a rise")
	}
}

func TestSaturation(t *testing.T) {
	var tb Table
	tb.Set("carp", "maintenance", 240, "", t0, 0)
	tb.Set("carp", "big", math.MaxInt, "", t0, 0)
	if s, _ := tb.Get("carp", "big"); s.Value != Max {
		t.Errorf("a source above %d holds %d", Max, s.Value)
	}
	tb.Set("carp", "x", 200, "", t0, 0)
	tb.Set("wan", "y", 255, "", t0, 0)
	tb.Set("", "own", 255, "", t0, 0)
	if c := tb.Counter("carp"); c != Max {
		t.Errorf("carp counter %d, want %d", c, Max)
	}
	if s := tb.Sum([]string{"carp", "wan", ""}); s != Max {
		t.Errorf("sum %d, want %d", s, Max)
	}
	for _, tc := range []struct{ cur, delta, want int }{
		{0, 1, 1}, {10, -3, 7}, {10, -11, 0}, {250, 6, 255}, {255, 1, 255},
		{0, math.MaxInt, 255}, {255, math.MaxInt, 255}, {0, math.MinInt, 0}, {255, math.MinInt, 0}, {255, -254, 1},
	} {
		if got := Add(tc.cur, tc.delta); got != tc.want {
			t.Errorf("Add(%d, %d) = %d, want %d", tc.cur, tc.delta, got, tc.want)
		}
	}
}

// TestSince: since is when the value last changed; a new reason or a
// renewed ttl keeps it.
func TestSince(t *testing.T) {
	var tb Table
	tb.Set("carp", "s", 1, "first", t0, 0)
	tb.Set("carp", "s", 1, "second", t0.Add(time.Minute), time.Hour)
	s, _ := tb.Get("carp", "s")
	if !s.Since.Equal(t0) || s.Reason != "second" || !s.Expires.Equal(t0.Add(time.Minute+time.Hour)) {
		t.Errorf("same value: %+v", s)
	}
	tb.Set("carp", "s", 2, "third", t0.Add(2*time.Minute), 0)
	s, _ = tb.Get("carp", "s")
	if !s.Since.Equal(t0.Add(2*time.Minute)) || !s.Expires.IsZero() {
		t.Errorf("new value, no ttl: %+v", s)
	}
}

// TestExpire: a source with a ttl removes itself at its expiry (on the
// caller's clock), renewing it moves the expiry, the others stay.
func TestExpire(t *testing.T) {
	var tb Table
	tb.Set("wan", "mwan3", 10, "", t0, 30*time.Second)
	tb.Set("wan", "bird", 1, "", t0, time.Minute)
	tb.Set("carp", "keep", 1, "", t0, 0)
	if got := tb.NextExpiry(); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("next expiry %v", got)
	}
	if ch := tb.Expire(t0.Add(29 * time.Second)); ch != nil || tb.Counter("wan") != 11 {
		t.Errorf("before expiry: changed %q, wan %d", ch, tb.Counter("wan"))
	}
	// Renewed at 20 s: expires at 50 s.
	tb.Set("wan", "mwan3", 10, "", t0.Add(20*time.Second), 30*time.Second)
	if ch := tb.Expire(t0.Add(30 * time.Second)); ch != nil {
		t.Errorf("renewed source expired at its old expiry: %q", ch)
	}
	if ch := tb.Expire(t0.Add(50 * time.Second)); !slices.Equal(ch, []string{"wan"}) || tb.Counter("wan") != 1 {
		t.Errorf("at 50 s: changed %q, wan %d, want [wan], 1", ch, tb.Counter("wan"))
	}
	if ch := tb.Expire(t0.Add(time.Hour)); !slices.Equal(ch, []string{"wan"}) || tb.Counter("wan") != 0 {
		t.Errorf("at 1 h: changed %q, wan %d", ch, tb.Counter("wan"))
	}
	if !tb.NextExpiry().IsZero() || tb.Counter("carp") != 1 {
		t.Errorf("after: next expiry %v, carp %d", tb.NextExpiry(), tb.Counter("carp"))
	}
}

func TestNames(t *testing.T) {
	for s, want := range map[string]bool{
		"wan": true, "wan_ping": true, "mwan3:wan.v4-x": true, "": false, "a b": false,
		"x/y": false, "é": false, "abcdefghijklmnopqrstuvwxyz012345": true, "abcdefghijklmnopqrstuvwxyz0123456": false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"link:eth0": true, "maintenance": true, "sync": true, "sync_link": true, "sync_bulk": true, "sync_x": true,
		"send_errors": true, "manual": false, "wan_ping": false, "link": false, "linkx": false,
	} {
		if got := Builtin(s); got != want {
			t.Errorf("Builtin(%q) = %v", s, got)
		}
	}
}
