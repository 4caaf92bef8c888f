//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

// An impl is one implementation at one setting: a row of the table.
type impl interface {
	name() string
	settings() string
	// start starts the daemon on r.
	start(r *router) error
	// ready reports whether r1 is the established master of both VIPs
	// with its upstream check passing and r2 a backup of both.
	ready(tb *testbed, r2Since time.Time) (bool, error)
}

// holds reports which of the two VIPs r has (lan, wan).
func holds(r *router) (lan, wan bool, err error) {
	for _, c := range []struct {
		ifname, vip string
		got         *bool
	}{{"lan", lanVIP, &lan}, {"wan", wanVIP, &wan}} {
		addrs, err := r.host.Addrs(c.ifname)
		if err != nil {
			return false, false, err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a); err == nil && p.Addr().String() == c.vip {
				*c.got = true
			}
		}
	}
	return lan, wan, nil
}

func holdsBoth(r *router) bool {
	l, w, err := holds(r)
	return err == nil && l && w
}

func holdsNone(r *router) bool {
	l, w, err := holds(r)
	return err == nil && !l && !w
}

// ---------------------------------------------------------------------
// carpd

type carpdImpl struct {
	bin      string
	label    string
	interval string // the tracker's option interval
	logLevel string
}

func (c *carpdImpl) name() string { return c.label }
func (c *carpdImpl) settings() string {
	return fmt.Sprintf("advbase 1, advskew 0 (r1) / 1 (r2), preempt on, vhid 1 on lan and vhid 2 on wan (both in group carp); "+
		"`config track 'wan_ping'` type ping, target %s, interval %s, every other option its default (timeout min(1, interval), down 3, up 3, weight 1); no state sync",
		targetIP, c.interval)
}

func (c *carpdImpl) conf(r *router) string {
	skew := 1
	if r.master {
		skew = 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config carpd 'global'\n\toption preempt '1'\n\toption log_level '%s'\n\toption control_socket '%s'\n\n", c.logLevel, r.sock())
	for _, v := range []struct {
		ifname string
		vhid   int
		vip    string
	}{{"lan", 1, lanVIP}, {"wan", 2, wanVIP}} {
		fmt.Fprintf(&b, "config vhid '%s'\n\toption interface '%s'\n\toption vhid '%d'\n\toption advbase '1'\n\toption advskew '%d'\n\toption password 'bench'\n\tlist address '%s/24'\n\n",
			v.ifname, v.ifname, v.vhid, skew, v.vip)
	}
	fmt.Fprintf(&b, "config track 'wan_ping'\n\toption type 'ping'\n\tlist target '%s'\n\toption interval '%s'\n", targetIP, c.interval)
	return b.String()
}

func (c *carpdImpl) start(r *router) error {
	conf := filepath.Join(r.dir, "carpd.conf")
	if err := os.WriteFile(conf, []byte(c.conf(r)), 0o644); err != nil {
		return err
	}
	if err := r.start("carpd", c.bin, "-c", conf); err != nil {
		return err
	}
	return pollUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		if !r.alive() {
			return false, fmt.Errorf("%s: carpd exited at start:\n%s", r.name, r.output())
		}
		_, err := carpdStatus(r.sock())
		return err == nil, nil
	})
}

// carpdView is the part of `carpd status --json` the benchmark reads: the
// contract's names, decoded here rather than through the daemon's Go types.
type carpdView struct {
	VHIDs []struct {
		Interface string `json:"interface"`
		VHID      int    `json:"vhid"`
		State     string `json:"state"`
		Counters  struct {
			AdvertsReceived uint64 `json:"adverts_received"`
		} `json:"counters"`
	} `json:"vhids"`
	Trackers []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"trackers"`
}

func carpdStatus(sock string) (*carpdView, error) {
	raw, err := daemon.Call(sock, daemon.Request{Method: "status"})
	if err != nil {
		return nil, err
	}
	var st carpdView
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// carpdSettled: every vhid in state, heard the peer if backup, the tracker
// up.
func carpdSettled(r *router, state string) (bool, error) {
	if !r.alive() {
		return false, fmt.Errorf("%s: carpd exited:\n%s", r.name, r.output())
	}
	st, err := carpdStatus(r.sock())
	if err != nil {
		return false, nil
	}
	if len(st.VHIDs) != 2 {
		return false, fmt.Errorf("%s: %d vhids in status, want 2", r.name, len(st.VHIDs))
	}
	for _, v := range st.VHIDs {
		if v.State != state || (state == "BACKUP" && v.Counters.AdvertsReceived == 0) {
			return false, nil
		}
	}
	if len(st.Trackers) != 1 {
		return false, fmt.Errorf("%s: %d trackers in status, want 1 (a carpd without trackers?)", r.name, len(st.Trackers))
	}
	return st.Trackers[0].State == "up", nil
}

func (c *carpdImpl) ready(tb *testbed, _ time.Time) (bool, error) {
	if ok, err := carpdSettled(tb.r1, "MASTER"); !ok || err != nil {
		return false, err
	}
	if ok, err := carpdSettled(tb.r2, "BACKUP"); !ok || err != nil {
		return false, err
	}
	return holdsBoth(tb.r1) && holdsNone(tb.r2), nil
}

// ---------------------------------------------------------------------
// keepalived

type keepalivedImpl struct {
	bin   string
	label string
}

const (
	kaMasterPrio = 150
	kaBackupPrio = 100
	kaWeight     = -100
)

func (k *keepalivedImpl) name() string { return k.label }
func (k *keepalivedImpl) settings() string {
	return fmt.Sprintf("vrrp_version 2, advert_int 1, priority %d (r1) / %d (r2), state BACKUP on both, preempt (default), "+
		"one vrrp_instance on lan (vrid 1) and one on wan (vrid 2), both with track_script chk_up; "+
		"`vrrp_script chk_up { script \"/bin/ping -c1 -W1 %s\"; interval 1; fall 3; rise 3; weight %d }` (%d − %d = %d < %d: fails over); script_user root; run as `keepalived -n -l -D -P`",
		kaMasterPrio, kaBackupPrio, targetIP, kaWeight, kaMasterPrio, -kaWeight, kaMasterPrio+kaWeight, kaBackupPrio)
}

func (k *keepalivedImpl) conf(r *router) string {
	prio := kaBackupPrio
	if r.master {
		prio = kaMasterPrio
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n\trouter_id %s\n\tvrrp_version 2\n\tscript_user root\n}\n\n", r.name)
	fmt.Fprintf(&b, "vrrp_script chk_up {\n\tscript \"/bin/ping -c1 -W1 %s\"\n\tinterval 1\n\tfall 3\n\trise 3\n\tweight %d\n}\n\n", targetIP, kaWeight)
	for _, v := range []struct {
		ifname string
		vrid   int
		vip    string
	}{{"lan", 1, lanVIP}, {"wan", 2, wanVIP}} {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n\tstate BACKUP\n\tinterface %s\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int 1\n\tvirtual_ipaddress {\n\t\t%s/24 dev %s\n\t}\n\ttrack_script {\n\t\tchk_up\n\t}\n}\n\n",
			v.vrid, v.ifname, v.vrid, prio, v.vip, v.ifname)
	}
	return b.String()
}

func (k *keepalivedImpl) start(r *router) error {
	conf := filepath.Join(r.dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(k.conf(r)), 0o644); err != nil {
		return err
	}
	pid := func(s string) string { return filepath.Join(r.dir, s+".pid") }
	if err := r.start("keepalived", k.bin, "-n", "-l", "-D", "-P", "-f", conf,
		"-p", pid("keepalived"), "-r", pid("vrrp"), "-c", pid("checkers"), "-b", pid("bfd")); err != nil {
		return err
	}
	return pollUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		if !r.alive() {
			return false, fmt.Errorf("%s: keepalived exited at start:\n%s", r.name, r.output())
		}
		_, err := os.Stat(pid("vrrp"))
		return err == nil, nil
	})
}

// ready: r1 holds both VIPs, r2 none, and r2 has run for longer than its
// master-down interval (3 × 1 s + (256 − 100)/256 s) plus the script's
// rise (3 rounds): an r1 whose check failed would have lost the VIPs by
// then.
func (k *keepalivedImpl) ready(tb *testbed, r2Since time.Time) (bool, error) {
	for _, r := range []*router{tb.r1, tb.r2} {
		if !r.alive() {
			return false, fmt.Errorf("%s: keepalived exited:\n%s", r.name, r.output())
		}
	}
	if time.Since(r2Since) < 5*time.Second {
		return false, nil
	}
	return holdsBoth(tb.r1) && holdsNone(tb.r2), nil
}

// pollUntil calls cond every step until it returns true or an error, or d
// has passed.
func pollUntil(d, step time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		time.Sleep(step)
	}
}
