package daemon

import (
	"errors"
	"math"
	"testing"

	"github.com/carpd/carpd/internal/config"
)

func TestAddDemotion(t *testing.T) {
	for _, tc := range []struct{ cur, delta, want int }{
		{0, 1, 1},
		{10, -3, 7},
		{10, -10, 0},
		{10, -11, 0},
		{0, -1, 0},
		{250, 5, 255},
		{250, 6, 255},
		{255, 1, 255},
		{0, 255, 255},
		{0, math.MaxInt, 255},
		{5, math.MaxInt, 255},
		{255, math.MaxInt, 255},
		{0, math.MinInt, 0},
		{255, math.MinInt, 0},
		{255, -255, 0},
		{255, -254, 1},
	} {
		if got := addDemotion(tc.cur, tc.delta); got != tc.want {
			t.Errorf("addDemotion(%d, %d) = %d, want %d", tc.cur, tc.delta, got, tc.want)
		}
	}
}

// TestDemoteTargets: which counters a demote request changes. The vhosts
// are configured but not running (no interface), which is enough: the
// counters live in the daemon.
func TestDemoteTargets(t *testing.T) {
	cfg := config.Default()
	for _, v := range []struct {
		iface string
		vhid  uint8
	}{{"eth0", 1}, {"eth0", 2}, {"eth1", 1}, {"eth1", 10}} {
		cfg.VHIDs = append(cfg.VHIDs, config.VHID{Interface: v.iface, VHID: v.vhid, AdvBase: 1})
	}
	type want struct {
		global int
		per    map[string]int
	}
	for _, tc := range []struct {
		name  string
		vhid  uint8
		iface string
		by    int
		want  want
		err   error
	}{
		{name: "all", by: 5, want: want{global: 5, per: map[string]int{}}},
		{name: "all MaxInt64", by: math.MaxInt, want: want{global: 255, per: map[string]int{}}},
		{name: "all MinInt64", by: math.MinInt, want: want{global: 0, per: map[string]int{}}},
		{name: "vhid 10", vhid: 10, by: 5, want: want{per: map[string]int{"eth1/10": 5}}},
		{name: "vhid 1 on both", vhid: 1, by: 3, want: want{per: map[string]int{"eth0/1": 3, "eth1/1": 3}}},
		{name: "vhid 1 on eth1", vhid: 1, iface: "eth1", by: 3, want: want{per: map[string]int{"eth1/1": 3}}},
		{name: "interface only", iface: "eth0", by: 7, want: want{per: map[string]int{"eth0/1": 7, "eth0/2": 7}}},
		{name: "interface only MaxInt64", iface: "eth0", by: math.MaxInt, want: want{per: map[string]int{"eth0/1": 255, "eth0/2": 255}}},
		{name: "unknown vhid", vhid: 99, by: 1, err: ErrNotFound, want: want{per: map[string]int{}}},
		{name: "unknown interface", iface: "eth9", by: 1, err: ErrNotFound, want: want{per: map[string]int{}}},
		{name: "vhid not on interface", vhid: 10, iface: "eth0", by: 1, err: ErrNotFound, want: want{per: map[string]int{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(cfg, Options{})
			for _, v := range cfg.VHIDs {
				d.vhosts[v.Key()] = &vhostEntry{cfg: v}
			}
			err := d.demote(tc.vhid, tc.iface, "", tc.by)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if g, _ := d.sources.Get("carp", "manual"); g.Value != tc.want.global {
				t.Errorf("global manual demotion %d, want %d", g.Value, tc.want.global)
			}
			for key, ve := range d.vhosts {
				if own, _ := ve.own.Get("", "manual"); own.Value != tc.want.per[key] {
					t.Errorf("%s manual demotion %d, want %d", key, own.Value, tc.want.per[key])
				}
			}
		})
	}
}
