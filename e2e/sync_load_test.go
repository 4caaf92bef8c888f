package e2e

// Load tests of connection-state sync in the firewall lab of sync_test.go:
// a large bulk transfer, a lossy and slow sync link under churn, and a
// dead peer. The flows are injected straight into the routers' conntrack
// tables with package internal/ctsync/kernel (no real traffic), opened in the
// router's namespace through Config.NetNS.

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/kernel"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/vip"
)

var (
	loadServer = netip.MustParseAddr("10.0.2.100") // the WAN server
	loadWANVIP = netip.MustParseAddr("10.0.2.1")   // the SNAT address
)

// lanFlow is the i-th forwarded-looking flow: an established TCP
// connection from a LAN client 10.0.1.(10+i/1000):(20000+i%1000) to the
// server's port 443, source-NATed to the WAN VIP with port 10000+i. Every
// i below 50 000 gives distinct original and reply tuples.
func lanFlow(i int, state uint8) flow.Flow {
	src := netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i/1000)})
	return flow.Flow{
		Orig:     flow.Tuple{Src: src, Dst: loadServer, Proto: flow.ProtoTCP, SrcPort: uint16(20000 + i%1000), DstPort: 443},
		Reply:    flow.Tuple{Src: loadServer, Dst: loadWANVIP, Proto: flow.ProtoTCP, SrcPort: 443, DstPort: uint16(10000 + i)},
		Status:   flow.StatusSeenReply | flow.StatusAssured,
		Timeout:  3600,
		TCPState: state,
	}
}

// openConntrack opens r's conntrack table from the test, in r's namespace
// (a descriptor of /run/netns/NS: the package's goroutines then need not
// run on a thread inside the namespace). The filter is carpd's: forwarded
// flows only, the router's addresses from a vip.Watcher in r's namespace,
// as the daemon's. Closed at the end of the test, before the lab.
func openConntrack(t *testing.T, h *lab.Host) *kernel.Conntrack {
	t.Helper()
	ns, err := os.Open(filepath.Join("/run/netns", h.NS))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close() // Open keeps a duplicate
	var w *vip.Watcher
	if err := h.Do(func() (err error) { w, err = vip.Watch(context.Background(), nil); return err }); err != nil {
		t.Fatalf("address watcher in %s: %v", h.Name, err)
	}
	kc, err := kernel.Open(kernel.Config{NetNS: int(ns.Fd()), Log: logx.New(logx.DiscardHandler),
		Filter: kernel.Filter{Local: w.IsLocal}})
	if err != nil {
		w.Close()
		t.Fatalf("conntrack in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { kc.Close(); w.Close() })
	return kc
}

// inject applies flows to kc and fails the test on any error.
func inject(t *testing.T, kc *kernel.Conntrack, flows []flow.Flow) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, err := range kc.Apply(ctx, flows) {
		if err != nil {
			t.Fatalf("injecting flow %v: %v", flows[i].Orig, err)
		}
	}
}

// table dumps kc's forwarded flows, keyed.
func table(t *testing.T, kc *kernel.Conntrack) map[flow.Key]flow.Flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs, err := kc.Dump(ctx)
	if err != nil {
		t.Fatalf("conntrack dump: %v", err)
	}
	m := make(map[flow.Key]flow.Flow, len(fs))
	for _, f := range fs {
		m[f.Key()] = f
	}
	return m
}

// tableDiff compares the backup's table with the master's: same original
// tuples, and per flow the same (NATed) reply tuple and TCP state. It
// returns "" when they match, else a summary with a few examples.
func tableDiff(master, backup map[flow.Key]flow.Flow) string {
	var missing, extra, differ []string
	for k, f := range master {
		g, ok := backup[k]
		switch {
		case !ok:
			missing = append(missing, k.Orig.String())
		case g.Reply != f.Reply || g.TCPState != f.TCPState:
			differ = append(differ, fmt.Sprintf("%v: reply %v state %d, want reply %v state %d", k.Orig, g.Reply, g.TCPState, f.Reply, f.TCPState))
		}
	}
	for k := range backup {
		if _, ok := master[k]; !ok {
			extra = append(extra, k.Orig.String())
		}
	}
	if len(missing)+len(extra)+len(differ) == 0 {
		return ""
	}
	few := func(s []string) []string {
		slices.Sort(s)
		return s[:min(len(s), 3)]
	}
	return fmt.Sprintf("master %d flows, backup %d: %d missing %v, %d extra %v, %d differ %v",
		len(master), len(backup), len(missing), few(missing), len(extra), few(extra), len(differ), few(differ))
}

// syncOptions returns f.routerConf(i, true) with extra options in the
// sync section.
func (f *firewallLab) syncOptions(i int, opts ...string) string {
	conf := f.routerConf(i, true)
	const last = "\toption window '50ms'\n"
	if !strings.Contains(conf, last) {
		f.t.Fatalf("routerConf changed; cannot extend its sync section:\n%s", conf)
	}
	var b strings.Builder
	b.WriteString(last)
	for _, o := range opts {
		fmt.Fprintf(&b, "\toption %s\n", o)
	}
	return strings.Replace(conf, last, b.String(), 1)
}

// rssKiB returns VmRSS of pid in KiB.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssMonitor samples the VmRSS of routers' carpd every 100 ms.
type rssMonitor struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak map[string]int // KiB
	last map[string]int
}

func watchRSS(t *testing.T, rs ...*router) *rssMonitor {
	m := &rssMonitor{stop: make(chan struct{}), peak: map[string]int{}, last: map[string]int{}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, r := range rs {
				if r.proc == nil || exited(r.proc) {
					continue
				}
				if kb, err := rssKiB(r.proc.Pid()); err == nil {
					m.mu.Lock()
					m.peak[r.name] = max(m.peak[r.name], kb)
					m.last[r.name] = kb
					m.mu.Unlock()
				}
			}
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(m.halt)
	return m
}

func (m *rssMonitor) halt() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

func (m *rssMonitor) get(name string) (peak, last int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak[name], m.last[name]
}

// raceBuilt reports whether the carpd under test is race-instrumented
// (TestMain builds it with -race unless CARPD_BIN is set).
func raceBuilt(t *testing.T) bool {
	bi, err := buildinfo.ReadFile(carpdBin)
	if err != nil {
		t.Fatalf("build info of %s: %v", carpdBin, err)
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// vhidStates lists "iface/vhid=STATE" of a status.
func vhidStates(st daemon.Status) (states []string, anyMaster, allBackup bool) {
	allBackup = len(st.VHIDs) > 0
	for _, v := range st.VHIDs {
		states = append(states, fmt.Sprintf("%s/%d=%s", v.Interface, v.VHID, v.State))
		anyMaster = anyMaster || v.State == "MASTER"
		allBackup = allBackup && v.State == "BACKUP"
	}
	return states, anyMaster, allBackup
}

// TestSyncBulk20000: a backup restarted while 20 000 flows exist receives
// all of them and stays demoted until done.
func TestSyncBulk20000(t *testing.T) {
	const n = 20000
	f := newFirewallLab(t)
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]

	kc1 := openConntrack(t, r1.host)
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = lanFlow(i, flow.TCPEstablished)
	}
	t0 := time.Now()
	inject(t, kc1, flows)
	want := table(t, kc1)
	if len(want) != n {
		t.Fatalf("r1 holds %d forwarded flows after injecting %d", len(want), n)
	}
	t.Logf("%d flows injected into r1 in %v", n, time.Since(t0).Round(time.Millisecond))

	c.start(r1, f.routerConf(0, true))
	c.waitState(r1, "lan", 1, "MASTER", 5*time.Second)
	c.waitState(r1, "wan", 2, "MASTER", 5*time.Second)
	c.waitFor(20*time.Second, "r1's engine reading its table", func() bool {
		return c.status(r1).Sync.FlowsLocal == n
	})

	start := time.Now()
	c.start(r2, f.routerConf(1, true))
	var (
		samples, demoted, demotedBackup int
		demotedMid                      int // demoted, BACKUP and part of the table in
		firstRecv, synced               time.Time
		maxMid                          int // largest bulk.received seen below n
		st                              daemon.Status
	)
	deadline := start.Add(60 * time.Second)
	for {
		st = c.status(r2)
		now := time.Now()
		samples++
		states, anyMaster, allBackup := vhidStates(st)
		if st.Sync.Bulk.Received > 0 && firstRecv.IsZero() {
			firstRecv = now
		}
		if st.Sync.Bulk.Received < n {
			maxMid = max(maxMid, st.Sync.Bulk.Received)
		}
		if !st.Sync.Bulk.Synced {
			if st.Demotion.Sync <= 0 {
				t.Fatalf("r2 not synced (%d flows received) but not demoted: %+v", st.Sync.Bulk.Received, st.Demotion)
			}
			if anyMaster {
				t.Fatalf("r2 became master during the bulk transfer (%d flows received): %v", st.Sync.Bulk.Received, states)
			}
			demoted++
			if allBackup {
				demotedBackup++
				if r := st.Sync.Bulk.Received; r > 0 && r < n {
					demotedMid++
				}
			}
		} else {
			synced = now
			break
		}
		if now.After(deadline) {
			t.Fatalf("r2 not synced after %v: %d/%d flows received, sync %+v", now.Sub(start).Round(time.Millisecond), st.Sync.Bulk.Received, n, st.Sync)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("r2: %d status samples, %d demoted before synced (%d with every vhid BACKUP, %d of them with part of the table); largest partial count %d",
		samples, demoted, demotedBackup, demotedMid, maxMid)
	if demotedMid == 0 {
		t.Fatalf("never saw r2 BACKUP and demoted with part of the table in (%d samples, %d demoted)", samples, demoted)
	}
	if st.Sync.Bulk.TimedOut {
		t.Fatalf("r2's bulk timed out instead of completing: %+v", st.Sync.Bulk)
	}
	if st.Sync.FlowsPeer != n {
		t.Fatalf("r2 synced with %d flows from peer, want %d", st.Sync.FlowsPeer, n)
	}
	// The demotion is lifted by the daemon once the engine says so.
	c.waitFor(2*time.Second, "r2's sync demotion lifted", func() bool {
		return c.status(r2).Demotion.Sync == 0
	})
	// A backup vhid publishes its demotion with its next status change
	// (the next advert heard).
	c.waitFor(2*time.Second, "r2's vhids BACKUP and no longer demoted", func() bool {
		for _, v := range c.status(r2).VHIDs {
			if v.State != "BACKUP" || v.Demotion != 0 {
				return false
			}
		}
		return true
	})
	bulk := synced.Sub(start)
	recv := time.Duration(0)
	if !firstRecv.IsZero() {
		recv = synced.Sub(firstRecv)
	}

	out := strings.TrimSpace(c.run(r2.host, "conntrack", "-C"))
	count, err := strconv.Atoi(out)
	if err != nil || count < n {
		t.Fatalf("r2's conntrack table holds %q entries, want >= %d", out, n)
	}
	kc2 := openConntrack(t, r2.host)
	if d := tableDiff(want, table(t, kc2)); d != "" {
		t.Fatalf("r2's table differs from r1's: %s", d)
	}
	s1, s2 := c.status(r1).Sync, c.status(r2).Sync
	t.Logf("bulk of %d flows: synced %v after r2 started (%v after the first flow arrived); r2's kernel holds %d entries",
		n, bulk.Round(time.Millisecond), recv.Round(time.Millisecond), count)
	t.Logf("r1 sent %d B in %d frames (%.1f B/flow), %d records, %d resent; r2 received %d B in %d frames, %d records, apply errors %d, drops queue %d",
		s1.Counters.BytesSent, s1.Counters.FramesSent, float64(s1.Counters.BytesSent)/n, s1.Counters.FlowsSent, s1.Counters.Retransmits,
		s2.Counters.BytesReceived, s2.Counters.FramesReceived, s2.Counters.FlowsReceived, s2.Counters.ApplyErrors, s2.Counters.DropQueue)
	t.Logf("r1: local %d synced %d pending %d from peer %d; r2: local %d synced %d pending %d from peer %d; r2 sent %d B back to r1",
		s1.FlowsLocal, s1.FlowsSynced, s1.FlowsPending, s1.FlowsPeer, s2.FlowsLocal, s2.FlowsSynced, s2.FlowsPending, s2.FlowsPeer, s2.Counters.BytesSent)
	if s2.Counters.ApplyErrors != 0 {
		t.Errorf("r2 had %d apply errors", s2.Counters.ApplyErrors)
	}
	if s1.FlowsPeer != 0 || s2.FlowsLocal != 0 {
		t.Errorf("the backup replicates flows back to the master: r2 local %d, r1 holds %d of them", s2.FlowsLocal, s1.FlowsPeer)
	}

	// carpd restarts on the backup: its kernel holds the 20 000 flows it
	// injected. They are r1's: the new r2 must take r1's table again and
	// send none of them back as its own.
	c.stop(r2)
	c.start(r2, f.routerConf(1, true))
	c.waitFor(60*time.Second, "restarted r2 synced with all of r1's flows", func() bool {
		st := c.status(r2).Sync
		return st.Bulk.Synced && st.FlowsPeer == n
	})
	// Let anything r2 would send back arrive.
	time.Sleep(2 * time.Second)
	s1, s2 = c.status(r1).Sync, c.status(r2).Sync
	t.Logf("after r2's restart: r1 local %d from peer %d; r2 local %d from peer %d, sent %d records",
		s1.FlowsLocal, s1.FlowsPeer, s2.FlowsLocal, s2.FlowsPeer, s2.Counters.FlowsSent)
	if s1.FlowsPeer != 0 || s2.FlowsLocal != 0 {
		t.Errorf("restarted r2 sent r1's flows back: r2 local %d, r1 holds %d of them", s2.FlowsLocal, s1.FlowsPeer)
	}
	if s1.FlowsLocal != n {
		t.Errorf("r1 replicates %d flows after r2's restart, want %d", s1.FlowsLocal, n)
	}
}

// impairSyncLink makes r's sync link lossy (10 %) and slow (256 kbit/s):
// netem on what r sends where the kernel has it, else a token bucket for
// the rate and an nftables rule dropping 10 % of the sync datagrams r
// receives, at random. It returns a description for the log.
func (f *firewallLab) impairSyncLink(r *router) string {
	t := f.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := r.host.Run(ctx, "tc", "qdisc", "add", "dev", "sync", "root", "netem", "loss", "10%", "rate", "256kbit")
	if err == nil {
		return "netem loss 10% rate 256kbit"
	}
	if !strings.Contains(err.Error(), "qdisc kind is unknown") {
		t.Fatalf("netem on %s: %v", r.name, err)
	}
	// No sch_netem in this kernel.
	f.run(r.host, "tc", "qdisc", "add", "dev", "sync", "root", "tbf", "rate", "256kbit", "burst", "4kb", "latency", "400ms")
	// The loss is on input, of what the peer sent: a drop on output would
	// fail the sender's sendmsg (EPERM) and tell it about the loss.
	f.run(r.host, "nft", `add table inet lossy
		add chain inet lossy in { type filter hook input priority -10; policy accept; }
		add rule inet lossy in iifname "sync" udp dport 7112 numgen random mod 100 < 10 counter drop`)
	return "tbf rate 256kbit + nft 10% random drop (no netem in this kernel)"
}

// lossCounter returns what the nft loss rule dropped on r (0 with netem).
func (f *firewallLab) lossCounter(r *router) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := r.host.Run(ctx, "nft", "list", "table", "inet", "lossy"); err == nil {
		if i := strings.Index(out, "counter packets"); i >= 0 {
			return strings.Fields(out[i:])[2] + " datagrams dropped"
		}
	}
	out, _ := r.host.Run(ctx, "tc", "-s", "qdisc", "show", "dev", "sync")
	return strings.Join(strings.Fields(out), " ")
}

// TestSyncLossyLink: on a sync link with 10 % loss and 256 kbit/s, with
// carpd capped at 200 kbit/s, the backup's table still converges to the
// master's under churn, and carpd's memory stays bounded.
func TestSyncLossyLink(t *testing.T) {
	f := newFirewallLab(t)
	requireTool(t, "tc")
	// The bound is 64 MiB. The race detector's shadow memory roughly
	// triples carpd's RSS (an idle -race carpd is at ~30 MiB, a plain one
	// at ~9), so a -race build gets twice the room.
	maxRSS := 64 << 10 // KiB
	if raceBuilt(t) {
		maxRSS *= 2
		t.Logf("carpd is race-instrumented: RSS bound %d MiB (64 MiB for a plain build)", maxRSS>>10)
	}
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]
	var how string
	for _, r := range c.routers {
		how = f.impairSyncLink(r)
	}
	t.Logf("sync link: %s, both ways", how)

	c.start(r1, f.syncOptions(0, "bandwidth '200kbit'"))
	c.waitState(r1, "lan", 1, "MASTER", 5*time.Second)
	c.start(r2, f.syncOptions(1, "bandwidth '200kbit'"))
	mon := watchRSS(t, r1, r2)
	c.waitFor(20*time.Second, "r2's initial (empty) sync", func() bool {
		st := c.status(r2)
		return st.Sync.Bulk.Synced && st.Sync.Established
	})
	if st := c.status(r2); st.Sync.Bulk.TimedOut {
		t.Fatalf("r2's initial sync timed out: %+v", st.Sync)
	}
	// Wait for the roles to settle: r1 stays demoted until its own bulk
	// from r2 is over, and r2, done first with both tables empty, takes
	// the VIPs from the demoted r1 for a moment (a double failover at
	// every start of the pair; reported, not what this test is about).
	c.waitFor(10*time.Second, "r1 synced and MASTER, r2 BACKUP", func() bool {
		return c.status(r1).Demotion.Sync == 0 && c.state(r1, "lan", 1) == "MASTER" && c.state(r1, "wan", 2) == "MASTER" &&
			c.state(r2, "lan", 1) == "BACKUP" && c.state(r2, "wan", 2) == "BACKUP"
	})
	_, base1 := mon.get(r1.name)
	_, base2 := mon.get(r2.name)

	// Churn on r1: 5 000 new flows, then 1 000 updated (FIN_WAIT), 1 000
	// deleted and 1 000 new ones, interleaved.
	kc1 := openConntrack(t, r1.host)
	kc2 := openConntrack(t, r2.host)
	start := time.Now()
	const batch = 500
	for i := 0; i < 5000; i += batch {
		fs := make([]flow.Flow, 0, batch)
		for j := i; j < i+batch; j++ {
			fs = append(fs, lanFlow(j, flow.TCPEstablished))
		}
		inject(t, kc1, fs)
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const step = 250
	for k := 0; k < 1000; k += step {
		var upd, add []flow.Flow
		var del []flow.Key
		for j := k; j < k+step; j++ {
			upd = append(upd, lanFlow(j, flow.TCPFinWait))
			g := lanFlow(1000+j, flow.TCPEstablished)
			del = append(del, g.Key())
			add = append(add, lanFlow(5000+j, flow.TCPEstablished))
		}
		inject(t, kc1, upd)
		if err := kc1.Delete(ctx, del); err != nil {
			t.Fatal(err)
		}
		inject(t, kc1, add)
		time.Sleep(300 * time.Millisecond)
	}
	churn := time.Since(start)
	// What r1's table must hold: flows 0-999 in FIN_WAIT, 2000-5999
	// established.
	truth := map[flow.Key]flow.Flow{}
	for j := 0; j < 6000; j++ {
		switch {
		case j < 1000:
			g := lanFlow(j, flow.TCPFinWait)
			truth[g.Key()] = g
		case j >= 2000:
			g := lanFlow(j, flow.TCPEstablished)
			truth[g.Key()] = g
		}
	}
	want := table(t, kc1)
	if d := tableDiff(truth, want); d != "" {
		t.Fatalf("r1's table after the churn is not what the test made it: %s", d)
	}

	// Convergence: r2's table equals r1's. r1's table does not change any
	// more, so the first match is checked once more a second later.
	var diff string
	var converged time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		want = table(t, kc1)
		diff = tableDiff(want, table(t, kc2))
		if diff == "" {
			if !converged.IsZero() && time.Since(converged) >= time.Second {
				break
			}
			if converged.IsZero() {
				converged = time.Now()
			}
		} else {
			converged = time.Time{}
		}
		if time.Now().After(deadline) {
			s1, s2 := c.status(r1).Sync, c.status(r2).Sync
			t.Fatalf("no convergence %v after the churn began: %s\nr1: local %d synced %d pending %d, bulk %+v, rtt %s, counters %+v\nr2: local %d peer %d, counters %+v",
				time.Since(start).Round(time.Second), diff, s1.FlowsLocal, s1.FlowsSynced, s1.FlowsPending, s1.Bulk, s1.RTT, s1.Counters,
				s2.FlowsLocal, s2.FlowsPeer, s2.Counters)
		}
		time.Sleep(250 * time.Millisecond)
	}
	conv := converged.Sub(start)
	// The sync must not have changed the master's own table either (the
	// backup writes nothing back to it that differs).
	if d := tableDiff(truth, want); d != "" {
		t.Fatalf("r1's table changed while syncing: %s", d)
	}
	time.Sleep(2 * time.Second) // memory after the storm
	mon.halt()
	s1, s2 := c.status(r1).Sync, c.status(r2).Sync
	if s1.FlowsPeer != 0 || s2.FlowsLocal != 0 {
		t.Errorf("the backup replicates flows back to the master: r2 local %d, r1 holds %d of them", s2.FlowsLocal, s1.FlowsPeer)
	}
	t.Logf("churn of %v; r2's table matched r1's (%d flows) %v after the churn began, %v after it ended",
		churn.Round(time.Millisecond), len(want), conv.Round(time.Millisecond), (conv - churn).Round(time.Millisecond))
	t.Logf("r1: sent %d B in %d frames, %d records, %d flows resent, drops %d/%d/%d (auth/replay/queue); r2: received %d B, %d records, apply errors %d; RTT %s",
		s1.Counters.BytesSent, s1.Counters.FramesSent, s1.Counters.FlowsSent, s1.Counters.Retransmits,
		s1.Counters.DropAuth, s1.Counters.DropReplay, s1.Counters.DropQueue,
		s2.Counters.BytesReceived, s2.Counters.FlowsReceived, s2.Counters.ApplyErrors, s1.RTT)
	t.Logf("loss: r1 %s; r2 %s", f.lossCounter(r1), f.lossCounter(r2))
	t.Logf("r1: local %d synced %d pending %d from peer %d; r2: local %d synced %d pending %d from peer %d; r2 sent %d B back to r1",
		s1.FlowsLocal, s1.FlowsSynced, s1.FlowsPending, s1.FlowsPeer, s2.FlowsLocal, s2.FlowsSynced, s2.FlowsPending, s2.FlowsPeer, s2.Counters.BytesSent)
	for _, r := range []*router{r1, r2} {
		peak, last := mon.get(r.name)
		base := map[string]int{r1.name: base1, r2.name: base2}[r.name]
		t.Logf("%s carpd VmRSS: %.1f MiB before the churn, peak %.1f MiB, %.1f MiB at the end",
			r.name, float64(base)/1024, float64(peak)/1024, float64(last)/1024)
		if peak == 0 {
			t.Errorf("no RSS sample of %s's carpd", r.name)
		}
		if peak > maxRSS {
			t.Errorf("%s's carpd peaked at %.1f MiB, above the %d MiB bound", r.name, float64(peak)/1024, maxRSS>>10)
		}
	}
}

// TestSyncPeerDeadDemotionBounded: with its sync peer not running at all,
// a router's sync demotion is lifted after bulk_timeout; it is not pinned
// forever, and the status says the bulk timed out.
func TestSyncPeerDeadDemotionBounded(t *testing.T) {
	const timeout = 5 * time.Second
	f := newFirewallLab(t)
	c := f.cluster
	r2 := c.routers[1]
	start := time.Now()
	c.start(r2, f.syncOptions(1, "bulk_timeout '5s'"))
	st := c.status(r2)
	if st.Sync.Bulk.Synced || st.Demotion.Sync <= 0 {
		t.Fatalf("r2 just started without its peer: bulk %+v, demotion %+v", st.Sync.Bulk, st.Demotion)
	}
	// Alone on its segments, r2 takes the VIPs (CARP demotion only ranks
	// routers that hear each other), but demoted.
	c.waitState(r2, "lan", 1, "MASTER", 5*time.Second)
	c.waitState(r2, "wan", 2, "MASTER", 5*time.Second)
	for _, v := range c.status(r2).VHIDs {
		if v.Demotion == 0 && time.Since(start) < timeout-time.Second {
			t.Fatalf("r2's %s vhid %d not demoted before the bulk timeout", v.Interface, v.VHID)
		}
	}
	var lifted time.Duration
	c.waitFor(timeout+5*time.Second, "r2's sync demotion lifted", func() bool {
		st = c.status(r2)
		lifted = time.Since(start)
		return st.Demotion.Sync == 0
	})
	if lifted < timeout-500*time.Millisecond {
		t.Fatalf("r2's sync demotion lifted after %v, before bulk_timeout %v", lifted, timeout)
	}
	if !st.Sync.Bulk.Synced || !st.Sync.Bulk.TimedOut {
		t.Fatalf("r2's bulk status after the timeout: %+v", st.Sync.Bulk)
	}
	c.waitFor(2*time.Second, "r2's vhids no longer demoted", func() bool {
		for _, v := range c.status(r2).VHIDs {
			if v.Demotion != 0 || v.State != "MASTER" {
				return false
			}
		}
		return true
	})
	t.Logf("r2's sync demotion lifted %v after start (bulk_timeout %v); bulk %+v", lifted.Round(10*time.Millisecond), timeout, st.Sync.Bulk)
}

// TestSyncOrphansPurgedAfterMasterRestart: carpd restarts on the master;
// ten of its thirty flows ended meanwhile (their DESTROY reached nobody).
// The backup takes the restarted peer's previous flows for orphans, asks
// for its table, and deletes from its kernel the ten it no longer has
// (they used to stay there until their timeout). Sync only, no vhid: no
// takeover moves the flows.
func TestSyncOrphansPurgedAfterMasterRestart(t *testing.T) {
	const n, gone = 30, 10
	f := newFirewallLab(t)
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]
	conf := func(i int) string {
		return confText(true) + fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n\toption window '50ms'\n\toption bulk_timeout '2s'\n",
			3-i, f.key)
	}
	kc1, kc2 := openConntrack(t, r1.host), openConntrack(t, r2.host)
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = lanFlow(i, flow.TCPEstablished)
	}
	inject(t, kc1, flows)

	c.start(r1, conf(0))
	c.waitFor(10*time.Second, "r1 alone, synced (gave up waiting) with its flows", func() bool {
		st := c.status(r1).Sync
		return st.Bulk.Synced && st.FlowsLocal == n
	})
	c.start(r2, conf(1))
	c.waitFor(20*time.Second, "r2 holding r1's flows", func() bool {
		return c.status(r2).Sync.FlowsPeer == n && tableDiff(table(t, kc1), table(t, kc2)) == ""
	})

	c.stop(r1)
	keys := make([]flow.Key, gone)
	for i := range keys {
		keys[i] = flows[i].Key()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kc1.Delete(ctx, keys); err != nil {
		t.Fatal(err)
	}
	c.start(r1, conf(0))
	c.waitFor(20*time.Second, "r2's table back to r1's 20 flows", func() bool {
		st := c.status(r2).Sync
		return st.FlowsPeer == n-gone && tableDiff(table(t, kc1), table(t, kc2)) == ""
	})
	s1, s2 := c.status(r1).Sync, c.status(r2).Sync
	t.Logf("after r1's restart: r1 local %d from peer %d; r2 from peer %d, purged %d", s1.FlowsLocal, s1.FlowsPeer, s2.FlowsPeer, s2.Counters.PurgedStale)
	if s2.Counters.PurgedStale != gone {
		t.Errorf("r2 purged %d flows, want the %d r1 no longer has", s2.Counters.PurgedStale, gone)
	}
	if s1.FlowsLocal != n-gone || s1.FlowsPeer != 0 {
		t.Errorf("r1 replicates %d flows and holds %d of r2's, want %d and 0", s1.FlowsLocal, s1.FlowsPeer, n-gone)
	}
}
