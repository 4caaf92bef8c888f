//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// vipSpec is one virtual address and the vhid / virtual router id it lives
// on.
type vipSpec struct {
	id   int    // vhid or VRRP virtual_router_id
	addr string // "10.0.1.1"
}

func (v vipSpec) cidr() string { return v.addr + "/24" }

// node is one router of a trial: its namespace, its LAN link, a private
// directory for configs, sockets, scripts and pid files, and the daemon
// processes running on it.
type node struct {
	name   string // "r1", "r2"
	ip     string // its own address, "10.0.1.2"
	master bool   // configured as the preferred master
	host   *lab.Host
	link   *lab.Link
	dir    string
	procs  []*lab.Proc // the daemon processes started (ucarp: one per VIP)
	logDir string      // where the daemons' output is copied
}

// sock is carpd's control socket on n.
func (n *node) sock() string { return filepath.Join(n.dir, "carpd.sock") }

// alive reports whether every daemon process of n still runs.
func (n *node) alive() bool {
	if len(n.procs) == 0 {
		return false
	}
	for _, p := range n.procs {
		select {
		case <-p.Done():
			return false
		default:
		}
	}
	return true
}

// pids returns the daemon processes of n and their descendants (keepalived's
// VRRP child), for CPU and memory accounting.
func (n *node) pids() []int {
	var roots []int
	for _, p := range n.procs {
		roots = append(roots, p.Pid())
	}
	return withDescendants(roots)
}

// output returns the daemons' output.
func (n *node) output() string {
	var b strings.Builder
	for _, p := range n.procs {
		fmt.Fprintf(&b, "--- %s (pid %d)\n%s", p, p.Pid(), p.Output())
	}
	return b.String()
}

// crash SIGKILLs every daemon process of n at once (process groups first,
// then any descendant that left its group) and drops n's LAN carrier.
func (n *node) crash() error {
	desc := n.pids()
	for _, p := range n.procs {
		p.Kill()
	}
	for _, pid := range desc {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return n.link.SetUp(false)
}

// terminate sends SIGTERM to every daemon process of n.
func (n *node) terminate() error {
	for _, p := range n.procs {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return fmt.Errorf("%s: SIGTERM: %w", n.name, err)
		}
	}
	return nil
}

// waitExit waits up to d for every daemon process of n to exit.
func (n *node) waitExit(d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, p := range n.procs {
		if err := p.Wait(max(time.Until(deadline), time.Millisecond)); err != nil {
			if _, ok := err.(*exec.ExitError); ok {
				return fmt.Errorf("%s exited with %v", n.name, err)
			}
			return err
		}
	}
	return nil
}

// start starts one daemon process on n, its output copied to the log dir.
func (n *node) start(tag string, args ...string) error {
	opts := lab.StartOptions{}
	if n.logDir != "" {
		opts.LogFile = filepath.Join(n.logDir, fmt.Sprintf("%s-%s.log", n.name, tag))
	}
	p, err := n.host.StartWith(opts, niceArgs(daemonNice, args)...)
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)
	return nil
}

// An impl is one implementation at one setting: a row of the table.
type impl interface {
	// name is the row label.
	name() string
	// interval is the master's advertisement interval.
	interval() time.Duration
	// masterDown is the backup's master-down interval as configured.
	masterDown() time.Duration
	// settings describes the configuration of both nodes for the report.
	settings() string
	// start starts the daemon on n for vips.
	start(n *node, vips []vipSpec) error
	// isMaster reports whether n is the established master of every vip.
	isMaster(n *node, vips []vipSpec) (bool, error)
	// backupReady reports whether n is a backup of every vip that has
	// heard the master. heard is the number of the master's adverts the
	// client's sniffer has seen since n's daemon has been up.
	backupReady(n *node, vips []vipSpec, heard int) (bool, error)
	// stopTimeout bounds a graceful stop.
	stopTimeout() time.Duration
}

// ---------------------------------------------------------------------
// carpd

type carpdImpl struct {
	bin           string
	label         string
	masterBase    int
	masterSkew    int
	backupBase    int
	backupSkew    int
	logLevel      string
	password      string
	transitionsOK bool
}

func carpdInterval(base, skew int) time.Duration {
	return time.Duration(base)*time.Second + time.Duration(skew)*time.Second/256
}

func (c *carpdImpl) name() string { return c.label }
func (c *carpdImpl) interval() time.Duration {
	return carpdInterval(c.masterBase, c.masterSkew)
}
func (c *carpdImpl) masterDown() time.Duration {
	return 3 * carpdInterval(c.backupBase, c.backupSkew)
}
func (c *carpdImpl) settings() string {
	return fmt.Sprintf("master advbase %d advskew %d (%s), backup advbase %d advskew %d (%s); preempt off; password set; multicast",
		c.masterBase, c.masterSkew, fmtDur(c.interval()), c.backupBase, c.backupSkew, fmtDur(carpdInterval(c.backupBase, c.backupSkew)))
}
func (c *carpdImpl) stopTimeout() time.Duration { return 5 * time.Second }

func (c *carpdImpl) conf(n *node, vips []vipSpec) string {
	base, skew := c.backupBase, c.backupSkew
	if n.master {
		base, skew = c.masterBase, c.masterSkew
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config carpd 'global'\n\toption preempt '0'\n\toption log_level '%s'\n\toption control_socket '%s'\n\n",
		c.logLevel, n.sock())
	for _, v := range vips {
		fmt.Fprintf(&b, "config vhid 'v%d'\n\toption interface 'lan'\n\toption vhid '%d'\n\toption advbase '%d'\n\toption advskew '%d'\n\toption password '%s'\n\tlist address '%s'\n\n",
			v.id, v.id, base, skew, c.password, v.cidr())
	}
	return b.String()
}

func (c *carpdImpl) start(n *node, vips []vipSpec) error {
	conf := filepath.Join(n.dir, "carpd.conf")
	if err := os.WriteFile(conf, []byte(c.conf(n, vips)), 0o644); err != nil {
		return err
	}
	if err := n.start("carpd", c.bin, "-c", conf); err != nil {
		return err
	}
	return pollUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		if !n.alive() {
			return false, fmt.Errorf("%s: carpd exited at start:\n%s", n.name, n.output())
		}
		_, err := carpdStatus(n.sock())
		return err == nil, nil
	})
}

func carpdStatus(sock string) (*daemon.Status, error) {
	raw, err := daemon.Call(sock, daemon.Request{Method: "status"})
	if err != nil {
		return nil, err
	}
	var st daemon.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// carpdStates returns the state and adverts received of each vip's vhid.
func carpdAll(n *node, vips []vipSpec, ok func(state string, rcvd uint64) bool) (bool, error) {
	st, err := carpdStatus(n.sock())
	if err != nil {
		return false, nil
	}
	for _, v := range vips {
		found := false
		for _, s := range st.VHIDs {
			if s.Interface == "lan" && int(s.VHID) == v.id {
				found = true
				if !ok(s.State, s.Counters.AdvertsReceived) {
					return false, nil
				}
			}
		}
		if !found {
			return false, fmt.Errorf("%s: carpd has no vhid %d", n.name, v.id)
		}
	}
	return true, nil
}

func (c *carpdImpl) isMaster(n *node, vips []vipSpec) (bool, error) {
	ok, err := carpdAll(n, vips, func(s string, _ uint64) bool { return s == "MASTER" })
	if !ok || err != nil {
		return ok, err
	}
	return holdsAll(n, vips)
}

func (c *carpdImpl) backupReady(n *node, vips []vipSpec, _ int) (bool, error) {
	return carpdAll(n, vips, func(s string, rcvd uint64) bool { return s == "BACKUP" && rcvd > 0 })
}

// ---------------------------------------------------------------------
// ucarp

type ucarpImpl struct {
	bin        string
	label      string
	advbase    int
	masterSkew int
	backupSkew int
	password   string
}

func (u *ucarpImpl) name() string            { return u.label }
func (u *ucarpImpl) interval() time.Duration { return carpdInterval(u.advbase, u.masterSkew) }
func (u *ucarpImpl) masterDown() time.Duration {
	return 3 * carpdInterval(u.advbase, u.backupSkew) // deadratio 3
}
func (u *ucarpImpl) settings() string {
	return fmt.Sprintf("master --advbase %d --advskew %d, backup --advbase %d --advskew %d; deadratio 3 (default); --shutdown; no --preempt; up/down scripts `ip addr add/del VIP/24 dev lan`; one process per VIP",
		u.advbase, u.masterSkew, u.advbase, u.backupSkew)
}
func (u *ucarpImpl) stopTimeout() time.Duration { return 5 * time.Second }

const (
	ucarpUp   = "#!/bin/sh\n# ucarp up script: $1 interface, $2 VIP\nexec ip addr add \"$2\"/24 dev \"$1\"\n"
	ucarpDown = "#!/bin/sh\n# ucarp down script: $1 interface, $2 VIP\nip addr del \"$2\"/24 dev \"$1\" 2>/dev/null\nexit 0\n"
)

func (u *ucarpImpl) start(n *node, vips []vipSpec) error {
	up, down := filepath.Join(n.dir, "vip-up.sh"), filepath.Join(n.dir, "vip-down.sh")
	if err := os.WriteFile(up, []byte(ucarpUp), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(down, []byte(ucarpDown), 0o755); err != nil {
		return err
	}
	skew := u.backupSkew
	if n.master {
		skew = u.masterSkew
	}
	for _, v := range vips {
		args := []string{u.bin, "--interface=lan", "--srcip=" + n.ip, fmt.Sprintf("--vhid=%d", v.id),
			"--pass=" + u.password, "--addr=" + v.addr, fmt.Sprintf("--advbase=%d", u.advbase),
			fmt.Sprintf("--advskew=%d", skew), "--upscript=" + up, "--downscript=" + down, "--shutdown"}
		if err := n.start(fmt.Sprintf("ucarp-vhid%d", v.id), args...); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	if !n.alive() {
		return fmt.Errorf("%s: ucarp exited at start:\n%s", n.name, n.output())
	}
	return nil
}

func (u *ucarpImpl) isMaster(n *node, vips []vipSpec) (bool, error) { return holdsAll(n, vips) }

func (u *ucarpImpl) backupReady(n *node, vips []vipSpec, heard int) (bool, error) {
	return peerBackupReady(n, vips, heard)
}

// peerBackupReady: the daemon runs, holds none of the VIPs, and the master's
// adverts have kept coming since it started (the client sees the same
// flooded multicast as the backup).
func peerBackupReady(n *node, vips []vipSpec, heard int) (bool, error) {
	if !n.alive() {
		return false, fmt.Errorf("%s: daemon exited:\n%s", n.name, n.output())
	}
	if heard < 2*len(vips) {
		return false, nil
	}
	held, err := holdsAny(n, vips)
	return !held, err
}

// ---------------------------------------------------------------------
// keepalived

type keepalivedImpl struct {
	bin        string
	label      string
	version    int           // VRRP version
	advertInt  time.Duration // advert_int
	masterPrio int
	backupPrio int
}

func (k *keepalivedImpl) name() string            { return k.label }
func (k *keepalivedImpl) interval() time.Duration { return k.advertInt }
func (k *keepalivedImpl) masterDown() time.Duration {
	// RFC 3768 / RFC 5798: 3 * interval + skew; v2 skew (256-prio)/256 s,
	// v3 skew (256-prio) * interval / 256.
	if k.version == 2 {
		return 3*k.advertInt + time.Duration(256-k.backupPrio)*time.Second/256
	}
	return 3*k.advertInt + time.Duration(256-k.backupPrio)*k.advertInt/256
}
func (k *keepalivedImpl) settings() string {
	return fmt.Sprintf("vrrp_version %d, advert_int %s, priority %d (master) / %d (backup), state BACKUP on both, preempt (default), no auth, one vrrp_instance per VIP; run as `keepalived -n -l -D -G -P`",
		k.version, strings.TrimSuffix(fmt.Sprintf("%g", k.advertInt.Seconds()), ".0"), k.masterPrio, k.backupPrio)
}
func (k *keepalivedImpl) stopTimeout() time.Duration { return 8 * time.Second }

func (k *keepalivedImpl) conf(n *node, vips []vipSpec) string {
	prio := k.backupPrio
	if n.master {
		prio = k.masterPrio
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n\trouter_id %s\n\tvrrp_version %d\n}\n\n", n.name, k.version)
	for _, v := range vips {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n\tstate BACKUP\n\tinterface lan\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int %g\n\tvirtual_ipaddress {\n\t\t%s dev lan\n\t}\n}\n\n",
			v.id, v.id, prio, k.advertInt.Seconds(), v.cidr())
	}
	return b.String()
}

func (k *keepalivedImpl) start(n *node, vips []vipSpec) error {
	conf := filepath.Join(n.dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(k.conf(n, vips)), 0o644); err != nil {
		return err
	}
	pid := func(s string) string { return filepath.Join(n.dir, s+".pid") }
	if err := n.start("keepalived", k.bin, "-n", "-l", "-D", "-G", "-P", "-f", conf,
		"-p", pid("keepalived"), "-r", pid("vrrp"), "-c", pid("checkers"), "-b", pid("bfd")); err != nil {
		return err
	}
	// The VRRP child writes its pid file once it runs.
	return pollUntil(5*time.Second, 20*time.Millisecond, func() (bool, error) {
		if !n.alive() {
			return false, fmt.Errorf("%s: keepalived exited at start:\n%s", n.name, n.output())
		}
		_, err := os.Stat(pid("vrrp"))
		return err == nil, nil
	})
}

func (k *keepalivedImpl) isMaster(n *node, vips []vipSpec) (bool, error) { return holdsAll(n, vips) }

func (k *keepalivedImpl) backupReady(n *node, vips []vipSpec, heard int) (bool, error) {
	return peerBackupReady(n, vips, heard)
}

// ---------------------------------------------------------------------

// holdsAll reports whether n has every VIP on lan.
func holdsAll(n *node, vips []vipSpec) (bool, error) {
	have, err := lanAddrs(n.host)
	if err != nil {
		return false, err
	}
	for _, v := range vips {
		if !have[netip.MustParseAddr(v.addr)] {
			return false, nil
		}
	}
	return true, nil
}

// holdsAny reports whether n has any of the VIPs on lan.
func holdsAny(n *node, vips []vipSpec) (bool, error) {
	have, err := lanAddrs(n.host)
	if err != nil {
		return false, err
	}
	for _, v := range vips {
		if have[netip.MustParseAddr(v.addr)] {
			return true, nil
		}
	}
	return false, nil
}
