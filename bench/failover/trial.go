//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

const (
	clientIP = "10.0.1.100"
	r1IP     = "10.0.1.2"
	r2IP     = "10.0.1.3"
	// labPrefix names the namespaces: bench<pid>.<n>-<host>.
	labPrefix = "bench"

	probeInterval = 10 * time.Millisecond
	// cleanFor is how long the client must have reached the VIP without
	// a loss before the master is crashed or stopped.
	cleanFor = time.Second
	// tail is how long the probe keeps running after the takeover, to see
	// the outage end and any flap after it.
	tail = time.Second
)

// scenario is how the master goes away.
type scenario string

const (
	crash    scenario = "crash"
	graceful scenario = "graceful"
)

// testbed is one fresh lab: a LAN switch, a client and two routers.
type testbed struct {
	lab    *lab.Lab
	client *lab.Host
	r1, r2 *node
	sniff  *sniffer
	dir    string
}

// newTestbed builds the topology. logDir, if set, receives the daemons'
// output.
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
	if tb.dir, err = os.MkdirTemp("", "carpd-bench-"); err != nil {
		return nil, err
	}
	lan, err := l.Switch("lan")
	if err != nil {
		return nil, err
	}
	if tb.client, err = l.Host("client"); err != nil {
		return nil, err
	}
	if _, err := l.Attach(tb.client, lan, "lan", clientIP+"/24"); err != nil {
		return nil, err
	}
	mk := func(name, ip string, master bool) (*node, error) {
		h, err := l.Host(name)
		if err != nil {
			return nil, err
		}
		k, err := l.Attach(h, lan, "lan", ip+"/24")
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(tb.dir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
		return &node{name: name, ip: ip, master: master, host: h, link: k, dir: dir, logDir: logDir}, nil
	}
	if tb.r1, err = mk("r1", r1IP, true); err != nil {
		return nil, err
	}
	if tb.r2, err = mk("r2", r2IP, false); err != nil {
		return nil, err
	}
	if tb.sniff, err = startSniffer(tb.client, netip.MustParseAddr(vip1.addr)); err != nil {
		return nil, err
	}
	ok = true
	return tb, nil
}

func (tb *testbed) close() error {
	if tb.sniff != nil {
		tb.sniff.Stop()
	}
	err := tb.lab.Close()
	if tb.dir != "" {
		os.RemoveAll(tb.dir)
	}
	return err
}

// establish starts the master, waits until it holds the VIPs, starts the
// backup and waits until it is a backup that has heard the master.
func (tb *testbed) establish(ctx context.Context, im impl, vips []vipSpec) error {
	if err := im.start(tb.r1, vips); err != nil {
		return fmt.Errorf("start r1: %w", err)
	}
	// A lone node waits out the master-down interval before it takes
	// over; allow a few times that.
	wait := 4*im.masterDown() + 5*time.Second
	if err := pollCtx(ctx, wait, 20*time.Millisecond, func() (bool, error) {
		if !tb.r1.alive() {
			return false, fmt.Errorf("r1 daemon exited:\n%s", tb.r1.output())
		}
		return im.isMaster(tb.r1, vips)
	}); err != nil {
		return fmt.Errorf("r1 becoming master: %w", err)
	}
	started := time.Now()
	if err := im.start(tb.r2, vips); err != nil {
		return fmt.Errorf("start r2: %w", err)
	}
	// Adverts counted only from 300 ms after the start, when the
	// daemon's sockets are surely open.
	if err := pollCtx(ctx, 3*im.interval()+5*time.Second, 20*time.Millisecond, func() (bool, error) {
		heard := len(tb.sniff.adverts(r1IP, started.Add(300*time.Millisecond), time.Now()))
		return im.backupReady(tb.r2, vips, heard)
	}); err != nil {
		return fmt.Errorf("r2 becoming a backup that hears r1: %w", err)
	}
	// The master must still be the master.
	if ok, err := im.isMaster(tb.r1, vips); err != nil || !ok {
		return fmt.Errorf("r1 no longer master once r2 runs (err %v)", err)
	}
	return nil
}

func pollCtx(ctx context.Context, d, step time.Duration, cond func() (bool, error)) error {
	return pollUntil(d, step, func() (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return cond()
	})
}

// setupError is a failure before the master was crashed or stopped: the
// lab or a daemon's start, not a measurement. Such a trial is run again.
type setupError struct{ err error }

func (e setupError) Error() string { return "setup: " + e.err.Error() }
func (e setupError) Unwrap() error { return e.err }

// trialResult is the outcome of one crash or graceful trial.
type trialResult struct {
	outage time.Duration // longest run of lost probes after the event
	lost   int           // probes lost after the event
	runs   int           // separate outages after the event
	open   bool          // the client never reached the VIP again
	// From the client's sniffer:
	phase    time.Duration // event - the master's last advert before it
	takeover time.Duration // the backup's first advert - event (-1: none)
	// vipAt is when the backup was first seen holding the VIP, after the
	// event.
	vipAt time.Duration
	// released is when the master was first seen without the VIP after
	// the event (-1: never, during the takeover wait).
	released time.Duration
	// backupAdvertsBefore counts adverts the backup sent in steady state
	// before the event: a false takeover (flap) if non-zero.
	backupAdvertsBefore int
	stopErr             string // graceful: the master did not exit cleanly
	note                string
	// wire is what the client's sniffer saw of the probe: the longest
	// silence and the late replies, which the lab prober counts as
	// answered however late.
	wire wireView
	// hostStall is the longest time this process went unscheduled
	// around the event, if over stallFlag: the trial was disturbed by
	// other load on the machine.
	hostStall time.Duration
	// detail lists the outages counted, relative to the event.
	detail string
	// r1HoldsAfter: the master still held the VIP at the end (graceful).
	r1HoldsAfter bool
}

var vip1 = vipSpec{id: 1, addr: "10.0.1.1"}

// lateAfter is the round-trip time beyond which a reply counts as late
// (-late).
var lateAfter = 100 * time.Millisecond

// probeGraceWire leaves out of the wire view the last requests, whose
// replies may still be on their way when the probe stops.
const probeGraceWire = 300 * time.Millisecond

// stalls watches for scheduling stalls of this process during the run.
var stalls *stallMonitor

// stallFlag is the stall beyond which a trial is flagged as disturbed.
const stallFlag = 50 * time.Millisecond

// capture makes every trial record a pcap of the client's interface into
// its log directory (-pcap).
var capture bool

// runTrial runs one trial of im in sc in a fresh lab.
func runTrial(ctx context.Context, im impl, sc scenario, logDir string, rng *rand.Rand) (res trialResult, err error) {
	stopLoad, err := maybeLoad(im)
	if err != nil {
		return res, err
	}
	defer stopLoad()
	tb, err := newTestbed(logDir)
	if err != nil {
		return res, setupError{err}
	}
	defer func() {
		if cerr := tb.close(); cerr != nil {
			logf("WARNING: lab close: %v", cerr)
		}
	}()
	vips := []vipSpec{vip1}
	if err := maybeLoss(ctx, im, tb); err != nil {
		return res, setupError{err}
	}
	if capture && logDir != "" {
		// Debugging aid (-pcap): the client's view of the segment.
		if _, err := tb.client.Start("tcpdump", "-n", "-U", "-s", "128", "-i", "lan", "-w", filepath.Join(logDir, "client.pcap")); err != nil {
			return res, setupError{err}
		}
	}
	if err := tb.establish(ctx, im, vips); err != nil {
		return res, setupError{err}
	}
	vip := netip.MustParseAddr(vip1.addr)
	probe, err := tb.client.StartProbe(vip, probeInterval, 2*time.Minute)
	if err != nil {
		return res, setupError{err}
	}
	defer probe.Stop()

	// 1 s of clean probes: the Snapshot covers requests older than
	// 200 ms; its last outage must have ended at least cleanFor ago.
	probeStart := time.Now()
	var cleanAt time.Time
	if err := pollCtx(ctx, 15*time.Second, 20*time.Millisecond, func() (bool, error) {
		now := time.Now()
		if now.Sub(probeStart) < cleanFor+200*time.Millisecond {
			return false, nil
		}
		snap := probe.Snapshot()
		if snap.Received == 0 {
			return false, nil
		}
		if n := len(snap.Outages); n > 0 {
			last := snap.Outages[n-1]
			if last.Open || now.Sub(last.End) < cleanFor+200*time.Millisecond {
				return false, nil
			}
		}
		cleanAt = now
		return true, nil
	}); err != nil {
		return res, setupError{fmt.Errorf("waiting for 1 s of clean probes: %w (%v)", err, probe.Snapshot())}
	}
	readyAt := cleanAt

	// Random phase against the master's advertisement timer.
	time.Sleep(time.Duration(rng.Int64N(int64(im.interval()))))

	t0 := time.Now()
	switch sc {
	case crash:
		err = tb.r1.crash()
	case graceful:
		err = tb.r1.terminate()
	}
	if err != nil {
		return res, err
	}
	stopped := make(chan error, 1)
	if sc == graceful {
		go func() { stopped <- tb.r1.waitExit(im.stopTimeout()) }()
	}

	// Takeover: the backup holds the VIP and the client gets answers
	// again.
	limit := 2*im.masterDown() + 5*time.Second
	var vipSeen time.Time
	var r1Released time.Time
	werr := pollCtx(ctx, limit, 5*time.Millisecond, func() (bool, error) {
		if r1Released.IsZero() {
			if held, err := holdsAny(tb.r1, vips); err == nil && !held {
				r1Released = time.Now()
			}
		}
		if vipSeen.IsZero() {
			held, err := holdsAll(tb.r2, vips)
			if err != nil {
				return false, err
			}
			if !held {
				return false, nil
			}
			vipSeen = time.Now()
		}
		return probe.RepliesSince(vipSeen) >= 5, nil
	})
	if werr != nil {
		res.note = fmt.Sprintf("no takeover within %v: %v", limit, werr)
	}
	if !vipSeen.IsZero() {
		res.vipAt = vipSeen.Sub(t0)
	}

	// The tail: keep watching when the old master lets go of the VIP.
	for end := time.Now().Add(tail); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r1Released.IsZero() {
			if held, err := holdsAny(tb.r1, vips); err == nil && !held {
				r1Released = time.Now()
			}
		}
	}
	stopAt := time.Now()
	pr := probe.Stop()
	if w := stalls.worst(readyAt.Add(-cleanFor), stopAt); w > stallFlag {
		res.hostStall = w
	}
	// The wire-level view, from the clean second on.
	res.wire = tb.sniff.wire(readyAt.Add(-cleanFor), stopAt.Add(-probeGraceWire), lateAfter)

	res.released = -1
	if !r1Released.IsZero() {
		res.released = r1Released.Sub(t0)
	}
	if sc == graceful {
		if err := <-stopped; err != nil {
			res.stopErr = err.Error()
		}
		if held, err := holdsAny(tb.r1, vips); err == nil && held {
			res.r1HoldsAfter = true
			res.note = "the stopped master still holds the VIP"
		}
	}

	for _, o := range pr.Outages {
		if !o.Open && !o.End.After(readyAt.Add(-200*time.Millisecond)) {
			continue // before the clean second
		}
		res.runs++
		res.detail += fmt.Sprintf(" [%+dms..%+dms: %d lost]", o.Start.Sub(t0).Milliseconds(), o.End.Sub(t0).Milliseconds(), o.Lost)
		res.lost += o.Lost
		res.outage = max(res.outage, o.Duration)
		if o.Open {
			res.open = true
		}
	}
	if before := tb.sniff.adverts(r1IP, readyAt.Add(-5*time.Second), t0); len(before) > 0 {
		res.phase = t0.Sub(before[len(before)-1])
	}
	res.takeover = -1
	if after := tb.sniff.adverts(r2IP, t0, time.Now()); len(after) > 0 {
		res.takeover = after[0].Sub(t0)
	}
	res.backupAdvertsBefore = len(tb.sniff.adverts(r2IP, readyAt, t0))
	if res.open && res.note == "" {
		res.note = "client never reached the VIP again"
	}
	return res, nil
}

// idleResult is the steady-state cost of the master daemon.
type idleResult struct {
	window       time.Duration
	cpuPct       float64 // from the threads' exact run time when available
	cpuTicksPct  float64 // from utime+stime (10 ms ticks)
	exact        bool    // cpuPct is from sched run times
	backupCPUPct float64
	wakeups      float64 // context switches of the master daemon per second
	threads      int     // threads of the master daemon
	perThread    string  // per-thread switches and run time, for the log
	from, to     time.Time
	mem          memUsage
	backupMem    memUsage
	masterAdv    int // adverts the master sent in the window
	backupAdv    int // adverts the backup sent (flaps) in the window
	// falseTakeovers counts the backup's bursts of adverts in the window
	// (a new burst after 2 × the master's interval without one): each is
	// the backup taking over from a master that was alive.
	falseTakeovers int
	lostMastership bool // r1 was not the master at the end of the window
	// masterGap is the longest time between two of the master's adverts
	// on the wire (either vhid): a false takeover with a gap over the
	// backup's master-down was the master's (or the host's) delay, one
	// without was the backup's.
	masterGap time.Duration
	pids      []int
	comms     []string
}

// runIdle measures the master daemon's idle CPU and memory over window,
// with vips configured.
func runIdle(ctx context.Context, im impl, vips []vipSpec, window time.Duration, logDir string) (res idleResult, err error) {
	stopLoad, err := maybeLoad(im)
	if err != nil {
		return res, err
	}
	defer stopLoad()
	tb, err := newTestbed(logDir)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := tb.close(); cerr != nil {
			logf("WARNING: lab close: %v", cerr)
		}
	}()
	if err := maybeLoss(ctx, im, tb); err != nil {
		return res, err
	}
	if capture && logDir != "" {
		if _, err := tb.client.Start("tcpdump", "-n", "-U", "-s", "128", "-i", "lan", "-w", filepath.Join(logDir, "client.pcap")); err != nil {
			return res, err
		}
	}
	if err := tb.establish(ctx, im, vips); err != nil {
		return res, err
	}
	// Let start-up work (gratuitous ARP bursts, GC) settle.
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	mp, bp := tb.r1.pids(), tb.r2.pids()
	m0, err := sampleCPU(mp)
	if err != nil {
		return res, err
	}
	b0, err := sampleCPU(bp)
	if err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(window):
	}
	m1, err := sampleCPU(mp)
	if err != nil {
		return res, fmt.Errorf("master daemon gone during the idle window: %w", err)
	}
	b1, err := sampleCPU(bp)
	if err != nil {
		return res, fmt.Errorf("backup daemon gone during the idle window: %w", err)
	}
	if res.mem, err = readMem(mp); err != nil {
		return res, err
	}
	if res.backupMem, err = readMem(bp); err != nil {
		return res, err
	}
	res.window = m1.t.Sub(m0.t)
	res.cpuTicksPct = float64(m1.ticks-m0.ticks) / clkTck / res.window.Seconds() * 100
	res.exact = m0.schedOK && m1.schedOK
	if res.exact {
		res.cpuPct = float64(m1.execNS-m0.execNS) / float64(res.window) * 100
	} else {
		res.cpuPct = res.cpuTicksPct
	}
	if b0.schedOK && b1.schedOK {
		res.backupCPUPct = float64(b1.execNS-b0.execNS) / float64(b1.t.Sub(b0.t)) * 100
	} else {
		res.backupCPUPct = float64(b1.ticks-b0.ticks) / clkTck / b1.t.Sub(b0.t).Seconds() * 100
	}
	res.wakeups = float64(m1.switches-m0.switches) / res.window.Seconds()
	res.perThread = threadDeltas(m0, m1)
	for _, p := range mp {
		if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p)); err == nil {
			res.threads += len(tasks)
		}
	}
	mAdv := tb.sniff.adverts(r1IP, m0.t, m1.t)
	res.masterAdv = len(mAdv)
	for i := 1; i < len(mAdv); i++ {
		res.masterGap = max(res.masterGap, mAdv[i].Sub(mAdv[i-1]))
	}
	res.from, res.to = m0.t, m1.t
	bAdv := tb.sniff.adverts(r2IP, m0.t, m1.t)
	res.backupAdv = len(bAdv)
	for i, t := range bAdv {
		if i == 0 || t.Sub(bAdv[i-1]) > 2*im.interval() {
			res.falseTakeovers++
		}
	}
	res.pids = mp
	for _, p := range mp {
		st, _ := readStat(p)
		res.comms = append(res.comms, st.comm)
	}
	if ok, err := im.isMaster(tb.r1, vips); err != nil || !ok {
		if res.falseTakeovers == 0 {
			return res, errors.New("r1 lost mastership during the idle window")
		}
		res.lostMastership = true // after a false takeover: a figure, not a failure
	}
	return res, nil
}
