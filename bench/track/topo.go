//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// The lab of one trial (the same topology as e2e/track_test.go):
//
//	client 10.0.1.100 ── lan ── r1 .2, r2 .3 (LAN VIP 10.0.1.1, the client's gateway)
//	                     sync ─ r1 10.0.3.2, r2 10.0.3.3
//	r1 .2, r2 .3 ──────── wan ── gw1 10.0.2.251, gw2 10.0.2.252 (WAN VIP 10.0.2.1, the SNAT address)
//	gw1 10.0.8.11, gw2 .12 ─ core ─ isp 10.0.8.1 (the tracked target)
//	isp 10.0.9.1 ─────────── srv ── server 10.0.9.100 (what the client reaches)
//
// Each router has its own upstream gateway (its "modem"): r1's default route
// is gw1, r2's is gw2. The isp routes the WAN subnet back through gw2, so a
// dead gw1 takes away r1's path (r1's own probes and the client's traffic
// through r1) and nothing else: every link of r1 stays up, and the CARP
// adverts on lan and wan keep flowing. Killing gw1 = an nftables table in
// gw1 that drops every IP packet at prerouting ("the upstream gateway stopped
// answering"; ARP still works, as with a live modem whose uplink is gone).
const (
	clientIP = "10.0.1.100"
	lanVIP   = "10.0.1.1"
	wanVIP   = "10.0.2.1"
	targetIP = "10.0.8.1"   // the isp: what the trackers ping
	serverIP = "10.0.9.100" // what the client probes
)

// routerRules is each router's firewall: forwarding only from the LAN (and
// the answers), the LAN's traffic SNATed to the WAN VIP. The router's own
// packets (the tracker's probes) keep the router's own address.
const routerRules = `
flush ruleset
table inet fw {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan" oifname "wan" ct state new accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ip saddr 10.0.1.0/24 snat to 10.0.2.1
	}
}
`

// deadRules makes a gateway drop every IP packet it receives.
const deadRules = `
table inet dead {
	chain pre {
		type filter hook prerouting priority -300; policy drop;
	}
}
`

// router is one of the two routers: its namespace and a private directory.
type router struct {
	name   string
	ip     string // LAN address
	master bool   // the preferred master
	host   *lab.Host
	dir    string
	logDir string
	procs  []*lab.Proc
}

func (r *router) sock() string { return filepath.Join(r.dir, "carpd.sock") }

func (r *router) start(tag string, args ...string) error {
	opts := lab.StartOptions{}
	if r.logDir != "" {
		opts.LogFile = filepath.Join(r.logDir, fmt.Sprintf("%s-%s.log", r.name, tag))
	}
	p, err := r.host.StartWith(opts, args...)
	if err != nil {
		return err
	}
	r.procs = append(r.procs, p)
	return nil
}

func (r *router) alive() bool {
	if len(r.procs) == 0 {
		return false
	}
	for _, p := range r.procs {
		select {
		case <-p.Done():
			return false
		default:
		}
	}
	return true
}

func (r *router) output() string {
	var b strings.Builder
	for _, p := range r.procs {
		fmt.Fprintf(&b, "--- %s (pid %d)\n%s", p, p.Pid(), p.Output())
	}
	return b.String()
}

// testbed is one fresh lab.
type testbed struct {
	lab                           *lab.Lab
	client, server, isp, gw1, gw2 *lab.Host
	r1, r2                        *router
	dir                           string
}

func newTestbed(logDir string) (*testbed, error) {
	l, err := lab.New(labPrefix)
	if err != nil {
		return nil, err
	}
	tb := &testbed{lab: l}
	ok := false
	defer func() {
		if !ok {
			tb.close()
		}
	}()
	if tb.dir, err = os.MkdirTemp("", "carpd-bench-track-"); err != nil {
		return nil, err
	}
	sw := map[string]*lab.Switch{}
	for _, n := range []string{"lan", "wan", "sync", "core", "srv"} {
		if sw[n], err = l.Switch(n); err != nil {
			return nil, err
		}
	}
	host := func(name string, links ...[3]string) (*lab.Host, error) {
		h, err := l.Host(name)
		if err != nil {
			return nil, err
		}
		for _, k := range links {
			if _, err := l.Attach(h, sw[k[0]], k[1], k[2]); err != nil {
				return nil, err
			}
		}
		return h, nil
	}
	if tb.client, err = host("client", [3]string{"lan", "lan", clientIP + "/24"}); err != nil {
		return nil, err
	}
	if tb.server, err = host("server", [3]string{"srv", "srv", serverIP + "/24"}); err != nil {
		return nil, err
	}
	if tb.isp, err = host("isp", [3]string{"core", "core", targetIP + "/24"}, [3]string{"srv", "srv", "10.0.9.1/24"}); err != nil {
		return nil, err
	}
	if tb.gw1, err = host("gw1", [3]string{"wan", "wan", "10.0.2.251/24"}, [3]string{"core", "core", "10.0.8.11/24"}); err != nil {
		return nil, err
	}
	if tb.gw2, err = host("gw2", [3]string{"wan", "wan", "10.0.2.252/24"}, [3]string{"core", "core", "10.0.8.12/24"}); err != nil {
		return nil, err
	}
	rules := filepath.Join(tb.dir, "router.nft")
	if err := os.WriteFile(rules, []byte(routerRules), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tb.dir, "dead.nft"), []byte(deadRules), 0o644); err != nil {
		return nil, err
	}
	mk := func(name string, i int, master bool) (*router, error) {
		h, err := host(name,
			[3]string{"lan", "lan", fmt.Sprintf("10.0.1.%d/24", i+2)},
			[3]string{"wan", "wan", fmt.Sprintf("10.0.2.%d/24", i+2)},
			[3]string{"sync", "sync", fmt.Sprintf("10.0.3.%d/24", i+2)})
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(tb.dir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		r := &router{name: name, ip: fmt.Sprintf("10.0.1.%d", i+2), master: master, host: h, dir: dir, logDir: logDir}
		if err := tb.run(h, "nft", "-f", rules); err != nil {
			return nil, err
		}
		return r, tb.run(h, "ip", "route", "add", "default", "via", fmt.Sprintf("10.0.2.%d", 251+i))
	}
	if tb.r1, err = mk("r1", 0, true); err != nil {
		return nil, err
	}
	if tb.r2, err = mk("r2", 1, false); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		h    *lab.Host
		args []string
	}{
		{tb.client, []string{"ip", "route", "add", "default", "via", lanVIP}},
		{tb.server, []string{"ip", "route", "add", "default", "via", "10.0.9.1"}},
		{tb.gw1, []string{"ip", "route", "add", "default", "via", targetIP}},
		{tb.gw2, []string{"ip", "route", "add", "default", "via", targetIP}},
		{tb.isp, []string{"ip", "route", "add", "10.0.2.0/24", "via", "10.0.8.12"}},
	} {
		if err := tb.run(c.h, c.args...); err != nil {
			return nil, err
		}
	}
	ok = true
	return tb, nil
}

func (tb *testbed) run(h *lab.Host, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.Run(ctx, args...)
	return err
}

// killPath makes gw (r1's or r2's upstream gateway) drop everything.
func (tb *testbed) killPath(gw *lab.Host) error {
	return tb.run(gw, "nft", "-f", filepath.Join(tb.dir, "dead.nft"))
}

// healPath undoes killPath.
func (tb *testbed) healPath(gw *lab.Host) error {
	return tb.run(gw, "nft", "delete", "table", "inet", "dead")
}

func (tb *testbed) close() error {
	err := tb.lab.Close()
	if tb.dir != "" {
		os.RemoveAll(tb.dir)
	}
	return err
}
