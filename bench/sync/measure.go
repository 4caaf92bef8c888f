//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/kernel"
	"github.com/carpd/carpd/internal/logx"
)

// result is everything measured for one implementation.
type result struct {
	impl, version string

	// Idle: the sync link with both daemons running and no flow.
	idleDur time.Duration
	idle    counters

	// Lifecycle: real short TCP connections through the master, at the
	// -gap rate; fast: the same at the -fast-gap rate (#14: 500 flows/s).
	lifecycleRun
	fast lifecycleRun

	// Latency: synthetic NEW on the master → NEW event in the backup.
	lat        []time.Duration
	latN       int
	latMissing int
	// rates: the same at fixed rates of new flows (-latency-rates).
	rates []rateLatency

	// Events: many flows injected at once on the master.
	evN                       int
	evInject                  time.Duration
	evErrs                    int
	evFirstErr                error
	evAll                     time.Duration // injection start → backup's kernel has them all (0: never)
	evGot                     int           // flows in the backup's kernel at the end
	evWait                    time.Duration // how long we waited
	evMasterCPU, evBackupCPU  time.Duration
	ev                        counters
	rssMaster, hwmMaster      int64
	rssBackup, hwmBackup      int64
	procsMaster, procsBackup  int
	threadsMaster, threadsBkp int

	// Intake alone: the master daemon with no peer daemon, the same flows.
	inN          int
	inAll        time.Duration // injection start → the daemon holds them all (0: never)
	inGot        int
	inCPU        time.Duration
	inRSS, inHWM int64
	inInject     time.Duration

	// Bulk: a backup starting next to a master with bulkN flows, shaped link.
	bulkN       int
	bulkLoad    time.Duration // master daemon start → it holds the table
	bulkKernel  time.Duration // backup daemon start → its kernel has them all (0: never)
	bulkSynced  time.Duration // carpd: backup start → status bulk.synced (0: n/a or never)
	bulkGot     int
	bulkWait    time.Duration
	bulk        counters
	bulkTimeout bool
	bulkStalled bool
	bulkArrived uint64 // datagrams from the master that reached the backup
	// The same again with a queue that holds a whole unpaced burst, when
	// the first attempt did not complete.
	retryQueue             int
	retryKernel, retryWait time.Duration
	retryGot               int
	retry                  counters

	summaries []string // the daemons' own counters after each phase
	notes     []string
}

// lifecycleRun is one run of short connections through the master.
type lifecycleRun struct {
	lcN, lcFailed    int
	lcFirstErr       error
	lcDur            time.Duration // first connect to the settled link
	lc               counters
	lcEvents         int // kernel TCP events of those flows on the master
	lcCreated        int // flows the master's kernel created
	lcDestroyed      int // of those, destroyed (DESTROY event) before the end
	lcBackupSeen     int // flows that appeared in the backup's kernel
	lcBackupLeft     int // lifecycle flows in the backup's kernel at the end
	lcMasterLeft     int // and in the master's
	lcDrainTimeout   bool
	lcMasterCPU      time.Duration
	lcBackupCPU      time.Duration
	lcConnectionsDur time.Duration
	lcDrain          time.Duration // first connect → every flow destroyed on the master

}

// rateLatency is the latency of single flows created at a given rate.
type rateLatency struct {
	rate     float64         // flows/s asked for
	achieved float64         // flows/s created
	lat      []time.Duration // sorted
	n        int
	missing  int
}

func (res *result) note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	logf("%s: NOTE: %s", res.impl, s)
	res.notes = append(res.notes, s)
}

// watcher follows a router's conntrack events and timestamps the flows of
// interest: the lifecycle connections and the latency flows.
type watcher struct {
	c    *kernel.Conntrack
	done chan struct{}

	mu        sync.Mutex
	lcEvents  int
	newAt     map[flow.Key]time.Time
	destroyAt map[flow.Key]time.Time
	overruns  int
}

var (
	serverIP = netip.MustParseAddr(serverAddr)
	// latencyNet holds latencyBase's /16 and one /16 after it for each
	// of at most 7 -latency-rates.
	latencyNet = netip.PrefixFrom(latencyBase, 13)
)

func lifecycleFlow(f *flow.Flow) bool {
	return f.Orig.Dst == serverIP && f.Orig.DstPort == serverPort
}

func watch(r *router) (*watcher, error) {
	log := logx.New(logx.NewTextHandler(os.Stderr, &logx.HandlerOptions{Level: logx.LevelWarn})).With("watcher", r.name)
	c, err := openCT(r, []uint8{flow.ProtoTCP}, log)
	if err != nil {
		return nil, err
	}
	w := &watcher{c: c, done: make(chan struct{}), newAt: map[flow.Key]time.Time{}, destroyAt: map[flow.Key]time.Time{}}
	go func() {
		defer close(w.done)
		for ev := range c.Events() {
			now := time.Now()
			lc := lifecycleFlow(&ev.Flow)
			if !lc && !latencyNet.Contains(ev.Flow.Orig.Src) && ev.Type != flow.EventOverrun {
				continue
			}
			w.mu.Lock()
			switch ev.Type {
			case flow.EventOverrun:
				w.overruns++
			case flow.EventNew:
				if _, ok := w.newAt[ev.Flow.Key()]; !ok {
					w.newAt[ev.Flow.Key()] = now
				}
			case flow.EventDestroy:
				if _, ok := w.destroyAt[ev.Flow.Key()]; !ok {
					w.destroyAt[ev.Flow.Key()] = now
				}
			}
			if lc {
				w.lcEvents++
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// resetLifecycle forgets the lifecycle flows seen so far, for another run.
func (w *watcher) resetLifecycle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range []map[flow.Key]time.Time{w.newAt, w.destroyAt} {
		for k := range m {
			if f := (flow.Flow{Orig: k.Orig}); lifecycleFlow(&f) {
				delete(m, k)
			}
		}
	}
	w.lcEvents = 0
}

func (w *watcher) close() {
	w.c.Close()
	<-w.done
}

// lifecycle counts the lifecycle flows created and destroyed.
func (w *watcher) lifecycle() (events, created, destroyed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.newAt {
		f := flow.Flow{Orig: k.Orig}
		if lifecycleFlow(&f) {
			created++
			if _, ok := w.destroyAt[k]; ok {
				destroyed++
			}
		}
	}
	return w.lcEvents, created, destroyed
}

func (w *watcher) arrived(k flow.Key) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.newAt[k]
	return t, ok
}

func (w *watcher) overrunCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.overruns
}

// countLifecycle dumps the watcher's table (which evicts expired entries)
// and counts the lifecycle flows in it; -1 if the dump fails.
func countLifecycle(ctx context.Context, w *watcher) int {
	fs, err := w.c.Dump(ctx)
	if err != nil {
		return -1
	}
	n := 0
	for i := range fs {
		if lifecycleFlow(&fs[i]) {
			n++
		}
	}
	return n
}

// leftovers describes the lifecycle flows still in the watcher's kernel:
// how many, by TCP state and status, with their timeouts.
func leftovers(ctx context.Context, w *watcher) string {
	fs, err := w.c.Dump(ctx)
	if err != nil {
		return "dump: " + err.Error()
	}
	type group struct {
		n          int
		tmin, tmax uint32
	}
	groups := map[string]*group{}
	var keys []string
	for _, f := range fs {
		if !lifecycleFlow(&f) {
			continue
		}
		k := fmt.Sprintf("%s status 0x%x", tcpStates[min(int(f.TCPState), len(tcpStates)-1)], f.Status)
		g := groups[k]
		if g == nil {
			g = &group{tmin: f.Timeout, tmax: f.Timeout}
			groups[k] = g
			keys = append(keys, k)
		}
		g.n++
		g.tmin, g.tmax = min(g.tmin, f.Timeout), max(g.tmax, f.Timeout)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		g := groups[k]
		parts = append(parts, fmt.Sprintf("%d × %s, timeout %d–%d s", g.n, k, g.tmin, g.tmax))
	}
	return strings.Join(parts, "; ")
}

var tcpStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2", "?"}

func cpuOf(r *router) (time.Duration, error) {
	if r.proc == nil {
		return 0, fmt.Errorf("%s: no daemon", r.name)
	}
	ps, _, err := readTree(r.proc.Pid())
	return ps.cpu, err
}

func (b *bench) startPair(ctx context.Context, im impl, phase string, shaped bool) error {
	for _, r := range []*router{b.r1, b.r2} {
		if err := im.start(ctx, b, r, phase, shaped); err != nil {
			return err
		}
	}
	return im.paired(ctx, b)
}

func (b *bench) stopPair() {
	stopDaemon(b.r2)
	stopDaemon(b.r1)
}

func (b *bench) summarize(ctx context.Context, im impl, res *result, phase string) {
	for _, r := range []*router{b.r1, b.r2} {
		if r.proc == nil {
			continue
		}
		role := map[*router]string{b.r1: "master", b.r2: "backup"}[r]
		s := fmt.Sprintf("%s, %s (%s): %s", phase, r.name, role, im.summary(ctx, b, r))
		logf("%s: %s", im.name(), s)
		res.summaries = append(res.summaries, s)
		if a := im.anomalies(ctx, b, r); len(a) > 0 {
			res.note("%s: the %s's counters: %s", phase, role, strings.Join(a, ", "))
		}
	}
}

// runImpl runs every phase for one implementation, in the same lab.
func (b *bench) runImpl(ctx context.Context, im impl) (*result, error) {
	res := &result{impl: im.name(), version: im.version()}
	defer b.stopPair()
	if err := b.steady(ctx, im, res); err != nil {
		return res, fmt.Errorf("steady phase: %w", err)
	}
	if err := b.events(ctx, im, res); err != nil {
		return res, fmt.Errorf("events phase: %w", err)
	}
	if err := b.bulkPhase(ctx, im, res); err != nil {
		return res, fmt.Errorf("bulk phase: %w", err)
	}
	return res, nil
}

// steady: idle chatter, short-flow lifecycle cost and latency, with one
// pair of daemons.
func (b *bench) steady(ctx context.Context, im impl, res *result) error {
	for _, r := range []*router{b.r1, b.r2} {
		if err := b.flushCT(ctx, r); err != nil {
			return err
		}
	}
	logf("%s: starting master and backup", im.name())
	if err := b.startPair(ctx, im, "steady", false); err != nil {
		return err
	}
	sleep(ctx, 2*time.Second)

	// 1. Idle.
	logf("%s: idle for %v", im.name(), b.o.idle)
	c0, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	sleep(ctx, b.o.idle)
	c1, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	res.idle, res.idleDur = c1.sub(c0), c1.at.Sub(c0.at)
	if pps := float64(res.idle.packets()) / res.idleDur.Seconds(); pps > 5 {
		res.note("idle: %.1f sync datagrams/s with no flow (%.1f/s from the master, %.1f/s from the backup)", pps,
			float64(res.idle.outP)/res.idleDur.Seconds(), float64(res.idle.inP)/res.idleDur.Seconds())
	}
	logf("%s: idle: %d B (IP) in %d packets over %v = %.1f B/s", im.name(), res.idle.bytes(), res.idle.packets(),
		res.idleDur.Round(time.Millisecond), float64(res.idle.bytes())/res.idleDur.Seconds())

	// 2. Lifecycle of real short connections.
	wm, err := watch(b.r1)
	if err != nil {
		return err
	}
	defer wm.close()
	wb, err := watch(b.r2)
	if err != nil {
		return err
	}
	defer wb.close()
	sleep(ctx, 500*time.Millisecond)
	if err := b.lifecycle(ctx, im, res, &res.lifecycleRun, "lifecycle", wm, wb, b.o.flows, b.o.gap); err != nil {
		return err
	}
	if b.o.fastFlows > 0 {
		sleep(ctx, time.Second)
		if err := b.lifecycle(ctx, im, res, &res.fast, fmt.Sprintf("lifecycle at %.0f/s", float64(time.Second)/float64(b.o.fastGap)), wm, wb, b.o.fastFlows, b.o.fastGap); err != nil {
			return err
		}
	}

	// 3. Latency: one synthetic flow at a time on the master.
	logf("%s: latency, %d flows ~%v apart", im.name(), b.o.latN, b.o.latGap)
	rl, err := b.latency(ctx, wm, wb, synthFlows(latencyBase, b.o.latN), b.o.latGap)
	if err != nil {
		return err
	}
	res.lat, res.latN, res.latMissing = rl.lat, rl.n, rl.missing
	if res.latMissing > 0 {
		res.note("latency: %d of %d flows never appeared in the backup's kernel (within 5 s)", res.latMissing, res.latN)
	}
	if len(res.lat) > 0 {
		logf("%s: latency p50 %v p99 %v max %v", im.name(), pct(res.lat, 50), pct(res.lat, 99), res.lat[len(res.lat)-1])
	}
	// 3b. The same at fixed rates of new flows.
	for i, rate := range b.o.latRates {
		n := min(max(int(rate*b.o.latRateTime.Seconds()), 20), maxRateFlows)
		// Each rate its own LAN range after latencyBase's (a /16 each).
		b4 := latencyBase.As4()
		base := netip.AddrFrom4([4]byte{b4[0], b4[1] + byte(1+i), 0, 0})
		logf("%s: latency at %g new flows/s, %d flows", im.name(), rate, n)
		sleep(ctx, time.Second)
		rl, err := b.latency(ctx, wm, wb, synthFlows(base, n), time.Duration(float64(time.Second)/rate))
		if err != nil {
			return err
		}
		rl.rate = rate
		res.rates = append(res.rates, rl)
		if rl.missing > 0 {
			res.note("latency at %g/s: %d of %d flows never appeared in the backup's kernel (within 5 s)", rate, rl.missing, rl.n)
		}
		if len(rl.lat) > 0 {
			logf("%s: latency at %g/s (%.0f/s achieved): p50 %v p99 %v max %v", im.name(), rate, rl.achieved,
				pct(rl.lat, 50), pct(rl.lat, 99), rl.lat[len(rl.lat)-1])
		}
	}
	b.summarize(ctx, im, res, "steady")
	b.stopPair()
	return nil
}

// maxRateFlows bounds the flows of one latency rate (each stays in both
// kernels until the tables are flushed).
const maxRateFlows = 20000

// latency creates fs in the master's kernel one at a time, gap apart on
// average (uniform in [gap/2, 3gap/2) on a fixed schedule, so that a late
// wake-up does not lower the rate: no phase lock with carpd's window),
// and times each from the create call to its NEW event in the backup's
// kernel.
func (b *bench) latency(ctx context.Context, wm, wb *watcher, fs []flow.Flow, gap time.Duration) (rateLatency, error) {
	rl := rateLatency{n: len(fs)}
	sent := make([]time.Time, len(fs))
	start := time.Now()
	next := start
	for i := range fs {
		if ctx.Err() != nil {
			break
		}
		next = next.Add(gap/2 + rand.N(gap))
		if d := time.Until(next); d > 0 {
			sleep(ctx, d)
		}
		sent[i] = time.Now()
		if err := wm.c.Apply(ctx, fs[i:i+1])[0]; err != nil {
			return rl, fmt.Errorf("injecting latency flow %d: %w", i, err)
		}
	}
	if d := time.Since(start); d > 0 {
		rl.achieved = float64(len(fs)) / d.Seconds()
	}
	waitFor(ctx, 5*time.Second, 50*time.Millisecond, func() bool {
		for _, f := range fs {
			if _, ok := wb.arrived(f.Key()); !ok {
				return false
			}
		}
		return true
	})
	for i, f := range fs {
		t, ok := wb.arrived(f.Key())
		if !ok || sent[i].IsZero() {
			rl.missing++
			continue
		}
		rl.lat = append(rl.lat, t.Sub(sent[i]))
	}
	slices.Sort(rl.lat)
	return rl, nil
}

// lifecycle runs n short connections through the master, one every gap,
// and fills lr; what names the run in notes and progress.
func (b *bench) lifecycle(ctx context.Context, im impl, res *result, lr *lifecycleRun, what string, wm, wb *watcher, n int, gap time.Duration) error {
	wm.resetLifecycle()
	wb.resetLifecycle()
	logf("%s: "+what+": %d short TCP connections, one every %v", im.name(), n, gap)
	cm0, _ := cpuOf(b.r1)
	cb0, _ := cpuOf(b.r2)
	c0, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	lr.lcN = n
	t0 := time.Now()
	lr.lcFailed, lr.lcFirstErr = b.connections(ctx, n, gap)
	lr.lcConnectionsDur = time.Since(t0)
	if lr.lcFailed > 0 {
		res.note(what+": %d of %d connections failed (first: %v)", lr.lcFailed, n, lr.lcFirstErr)
	}
	// Every flow gone from the master's table (TIME_WAIT is 2 s here), then
	// from the backup's, then a quiet 1.5 s for the last acknowledgements.
	// The kernel reaps expired entries (and sends their DESTROY) from its
	// GC, which runs as rarely as once a minute when the table holds
	// long-lived entries; a dump evicts expired entries at once, so both
	// tables are dumped every 250 ms meanwhile, as a busy router's GC would.
	var leftM, leftB int
	drained := waitFor(ctx, b.o.drainWait, 250*time.Millisecond, func() bool {
		leftM, leftB = countLifecycle(ctx, wm), countLifecycle(ctx, wb)
		return leftM == 0
	})
	lr.lcDrain = time.Since(t0)
	if !drained {
		lr.lcDrainTimeout = true
		res.note(what+": %d of the flows were still in the master's kernel %v after the first connect (all closed within %v)",
			leftM, lr.lcDrain.Round(time.Second), lr.lcConnectionsDur.Round(100*time.Millisecond))
	} else {
		logf("%s: "+what+": every flow gone from the master %v after the first connect", im.name(), lr.lcDrain.Round(time.Millisecond))
	}
	waitFor(ctx, 5*time.Second, 250*time.Millisecond, func() bool {
		leftB = countLifecycle(ctx, wb)
		return leftB == 0
	})
	sleep(ctx, 1500*time.Millisecond)
	c1, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	cm1, _ := cpuOf(b.r1)
	cb1, _ := cpuOf(b.r2)
	lr.lc, lr.lcDur = c1.sub(c0), c1.at.Sub(c0.at)
	lr.lcMasterCPU, lr.lcBackupCPU = cm1-cm0, cb1-cb0
	lr.lcEvents, lr.lcCreated, lr.lcDestroyed = wm.lifecycle()
	_, seen, _ := wb.lifecycle()
	lr.lcBackupSeen = seen
	lr.lcMasterLeft, lr.lcBackupLeft = countLifecycle(ctx, wm), countLifecycle(ctx, wb)
	if lr.lcBackupSeen < lr.lcCreated {
		res.note(what+": only %d of the master's %d flows ever appeared in the backup's kernel", lr.lcBackupSeen, lr.lcCreated)
	}
	for _, x := range []struct {
		r *router
		w *watcher
	}{{b.r1, wm}, {b.r2, wb}} {
		if left := leftovers(ctx, x.w); left != "" {
			res.note(what+": still in %s's kernel at the end (connections closed %v earlier): %s", x.r.name,
				time.Since(t0.Add(lr.lcConnectionsDur)).Round(time.Second), left)
		}
	}
	if n := wm.overrunCount() + wb.overrunCount(); n > 0 {
		res.note(what+": the benchmark's own event watchers overran %d times; event counts are lower bounds", n)
	}
	logf("%s: "+what+": %d flows, %d kernel events on the master, %d B (IP) in %d packets over %v; backup saw %d; left: master %d, backup %d",
		im.name(), lr.lcCreated, lr.lcEvents, lr.lc.bytes(), lr.lc.packets(), lr.lcDur.Round(time.Millisecond), seen, lr.lcMasterLeft, lr.lcBackupLeft)

	return nil
}

// events: b.o.events flows created as fast as possible on the master while
// both daemons run; CPU per event, end-to-end time, then memory.
func (b *bench) events(ctx context.Context, im impl, res *result) error {
	for _, r := range []*router{b.r1, b.r2} {
		if err := b.flushCT(ctx, r); err != nil {
			return err
		}
	}
	if err := b.intake(ctx, im, res); err != nil {
		return fmt.Errorf("intake alone: %w", err)
	}
	logf("%s: events phase: starting master and backup", im.name())
	if err := b.startPair(ctx, im, "events", false); err != nil {
		return err
	}
	sleep(ctx, time.Second)
	// The injector's own event socket is never read: after its channel
	// fills it drops events unparsed, so it costs the machine little.
	inj, err := kernel.Open(kernel.Config{NetNS: int(b.r1.ns.Fd()), Filter: kernel.Filter{Local: kernel.NoLocalAddrs},
		EventBuffer: 1, SocketBuffer: 64 << 10})
	if err != nil {
		return err
	}
	defer inj.Close()
	fs := synthFlows(bulkBase, b.o.events)
	base, err := ctCount(b.r2)
	if err != nil {
		return err
	}
	cm0, _ := cpuOf(b.r1)
	cb0, _ := cpuOf(b.r2)
	c0, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	logf("%s: injecting %d flows on the master", im.name(), len(fs))
	t0 := time.Now()
	res.evN = len(fs)
	res.evInject, res.evErrs, res.evFirstErr = inject(ctx, inj, fs, 256)
	if res.evErrs > 0 {
		res.note("events: %d of %d injections failed (first: %v)", res.evErrs, len(fs), res.evFirstErr)
	}
	logf("%s: injected in %v (%.0f/s); waiting for the backup's kernel", im.name(), res.evInject.Round(time.Millisecond),
		float64(len(fs))/res.evInject.Seconds())
	lastLog := time.Now()
	want := len(fs) - res.evErrs
	ok := waitFor(ctx, b.o.eventsWait, 50*time.Millisecond, func() bool {
		n, err := ctCount(b.r2)
		if err != nil {
			return false
		}
		res.evGot = n - base
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%s: backup has %d of %d after %v", im.name(), res.evGot, want, time.Since(t0).Round(time.Second))
		}
		return res.evGot >= want
	})
	res.evWait = time.Since(t0)
	if ok {
		res.evAll = res.evWait
	} else {
		res.note("events: the backup's kernel had %d of %d flows after %v", res.evGot, want, res.evWait.Round(time.Second))
	}
	// Let the trailing acknowledgements and frees happen, then count.
	sleep(ctx, time.Second)
	cm1, _ := cpuOf(b.r1)
	cb1, _ := cpuOf(b.r2)
	c1, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	res.ev = c1.sub(c0)
	res.evMasterCPU, res.evBackupCPU = cm1-cm0, cb1-cb0
	logf("%s: events: all in backup after %v; master CPU %v, backup CPU %v, %d B on the link",
		im.name(), res.evAll.Round(time.Millisecond), res.evMasterCPU, res.evBackupCPU, res.ev.bytes())
	sleep(ctx, 2*time.Second)
	if ps, n, err := readTree(b.r1.proc.Pid()); err == nil {
		res.rssMaster, res.hwmMaster, res.procsMaster, res.threadsMaster = ps.rss, ps.hwm, n, ps.threads
	}
	if ps, n, err := readTree(b.r2.proc.Pid()); err == nil {
		res.rssBackup, res.hwmBackup, res.procsBackup, res.threadsBkp = ps.rss, ps.hwm, n, ps.threads
	}
	logf("%s: RSS master %s (peak %s), backup %s (peak %s)", im.name(), mb(res.rssMaster), mb(res.hwmMaster), mb(res.rssBackup), mb(res.hwmBackup))
	b.summarize(ctx, im, res, "events")
	b.stopPair()
	inj.Close()
	for _, r := range []*router{b.r1, b.r2} {
		if err := b.flushCT(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// held is how many flows the daemon on r holds as its own (carpd: flows
// local; conntrackd: its internal cache).
func held(ctx context.Context, im impl, r *router) (int, error) {
	switch im := im.(type) {
	case *carpd:
		st, err := im.status(r)
		return st.Sync.FlowsLocal, err
	case *conntrackd:
		return im.internalFlows(ctx, r)
	}
	return 0, fmt.Errorf("unknown implementation %s", im.name())
}

// intake: the master daemon alone (no peer daemon, so nothing goes on the
// wire), the same flows created as fast as possible; its CPU time until it
// holds them all, and its memory then. This is the event intake cost
// without the peer protocol.
func (b *bench) intake(ctx context.Context, im impl, res *result) error {
	logf("%s: intake alone: starting the master only", im.name())
	if err := im.start(ctx, b, b.r1, "intake", false); err != nil {
		return err
	}
	defer func() {
		stopDaemon(b.r1)
		if err := b.flushCT(context.Background(), b.r1); err != nil {
			logf("flush: %v", err)
		}
	}()
	sleep(ctx, time.Second)
	inj, err := kernel.Open(kernel.Config{NetNS: int(b.r1.ns.Fd()), Filter: kernel.Filter{Local: kernel.NoLocalAddrs},
		EventBuffer: 1, SocketBuffer: 64 << 10})
	if err != nil {
		return err
	}
	defer inj.Close()
	fs := synthFlows(bulkBase, b.o.events)
	res.inN = len(fs)
	c0, _ := cpuOf(b.r1)
	t0 := time.Now()
	var nerr int
	res.inInject, nerr, _ = inject(ctx, inj, fs, 256)
	ok := waitFor(ctx, 60*time.Second, 200*time.Millisecond, func() bool {
		n, err := held(ctx, im, b.r1)
		res.inGot = n
		return err == nil && n >= len(fs)-nerr
	})
	if ok {
		res.inAll = time.Since(t0)
	} else {
		res.note("intake alone: the master daemon held %d of %d flows after 60 s", res.inGot, len(fs))
	}
	c1, _ := cpuOf(b.r1)
	res.inCPU = c1 - c0
	sleep(ctx, 2*time.Second)
	if ps, _, err := readTree(b.r1.proc.Pid()); err == nil {
		res.inRSS, res.inHWM = ps.rss, ps.hwm
	}
	logf("%s: intake alone: %d flows held after %v, CPU %v (%.0f/CPU-s), RSS %s (peak %s)", im.name(), res.inGot,
		res.inAll.Round(time.Millisecond), res.inCPU, perCPU(res.inN, res.inCPU), mb(res.inRSS), mb(res.inHWM))
	b.summarize(ctx, im, res, "intake alone")
	return nil
}

// bulkPhase: the master holds b.o.bulk flows; the backup daemon starts on
// a link shaped to b.o.bulkRate and gets the whole table. If it does not
// complete, the test is repeated with a queue that holds the whole burst.
func (b *bench) bulkPhase(ctx context.Context, im impl, res *result) error {
	r, err := b.bulkOnce(ctx, im, res, b.o.bulkQueue, "bulk")
	if err != nil {
		return err
	}
	res.bulkN, res.bulkLoad, res.bulkKernel, res.bulkSynced = r.n, r.load, r.kernel, r.synced
	res.bulkGot, res.bulkWait, res.bulk, res.bulkTimeout, res.bulkStalled = r.got, r.wait, r.c, !r.done, r.stalled
	res.bulkArrived = r.arrived
	if r.done || ctx.Err() != nil {
		return nil
	}
	q := max(4*b.o.bulkQueue, 8<<20)
	logf("%s: bulk did not complete; again with a %.1f MB queue", im.name(), float64(q)/1e6)
	r2, err := b.bulkOnce(ctx, im, res, q, "bulk-bigqueue")
	if err != nil {
		return err
	}
	res.retryQueue, res.retryKernel, res.retryWait, res.retryGot, res.retry = q, r2.kernel, r2.wait, r2.got, r2.c
	return nil
}

type bulkRun struct {
	n                    int
	load, kernel, synced time.Duration
	got                  int
	wait                 time.Duration
	c                    counters
	done, stalled        bool
	arrived              uint64 // datagrams the backup received from the master
}

func (b *bench) bulkOnce(ctx context.Context, im impl, res *result, queue int, phase string) (bulkRun, error) {
	var br bulkRun
	for _, r := range []*router{b.r1, b.r2} {
		if err := b.flushCT(ctx, r); err != nil {
			return br, err
		}
	}
	if err := b.shape(ctx, b.o.bulkRate, queue); err != nil {
		return br, err
	}
	defer func() {
		if err := b.shape(context.Background(), "", 0); err != nil {
			logf("removing the shaping: %v", err)
		}
	}()
	inj, err := kernel.Open(kernel.Config{NetNS: int(b.r1.ns.Fd()), Filter: kernel.Filter{Local: kernel.NoLocalAddrs},
		EventBuffer: 1, SocketBuffer: 64 << 10})
	if err != nil {
		return br, err
	}
	fs := synthFlows(bulkBase, b.o.bulk)
	_, nerr, first := inject(ctx, inj, fs, 256)
	inj.Close()
	if nerr > 0 {
		return br, fmt.Errorf("injecting the bulk table: %d errors (first: %v)", nerr, first)
	}
	br.n = len(fs)
	logf("%s: %s: %d flows on the master; starting the master daemon", im.name(), phase, len(fs))
	t0 := time.Now()
	if err := im.start(ctx, b, b.r1, phase, true); err != nil {
		return br, err
	}
	loaded := waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		n, err := held(ctx, im, b.r1)
		return err == nil && n >= len(fs)
	})
	br.load = time.Since(t0)
	if !loaded {
		res.note("%s: the master daemon did not hold the %d flows within 30 s", phase, len(fs))
	}
	sleep(ctx, time.Second)
	base, err := ctCount(b.r2)
	if err != nil {
		return br, err
	}
	c0, err := readCounters(ctx, b.r1)
	if err != nil {
		return br, err
	}
	cb0, err := readCounters(ctx, b.r2)
	if err != nil {
		return br, err
	}
	logf("%s: %s: starting the backup daemon on a %s link (queue %.1f MB)", im.name(), phase, b.o.bulkRate, float64(queue)/1e6)
	t0 = time.Now()
	if err := im.start(ctx, b, b.r2, phase, true); err != nil {
		return br, err
	}
	lastLog, lastProgress, lastGot := time.Now(), time.Now(), -1
	cd, _ := im.(*carpd)
	br.done = waitFor(ctx, b.o.bulkWait, 50*time.Millisecond, func() bool {
		if n, err := ctCount(b.r2); err == nil {
			br.got = n - base
			if br.got >= len(fs) && br.kernel == 0 {
				br.kernel = time.Since(t0)
			}
		}
		if br.got != lastGot {
			lastGot, lastProgress = br.got, time.Now()
		}
		if cd != nil && br.synced == 0 {
			if st, err := cd.status(b.r2); err == nil && st.Sync.Bulk.Synced {
				br.synced = time.Since(t0)
				if st.Sync.Bulk.TimedOut {
					res.note("%s: carpd's backup reports bulk.synced with timed_out=true", phase)
				}
			}
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%s: %s: backup has %d of %d after %v", im.name(), phase, br.got, len(fs), time.Since(t0).Round(time.Second))
		}
		if br.kernel == 0 && time.Since(lastProgress) > b.o.stall {
			br.stalled = true
			return true
		}
		return br.kernel > 0 && (cd == nil || br.synced > 0)
	})
	br.wait = time.Since(t0)
	if br.stalled {
		br.done = false
		res.note("%s (queue %.1f MB): the backup's kernel got no new flow for %v; stopped waiting after %v with %d of %d",
			phase, float64(queue)/1e6, b.o.stall, br.wait.Round(time.Second), br.got, len(fs))
	} else if !br.done {
		res.note("%s (queue %.1f MB): after %v the backup's kernel had %d of %d flows", phase, float64(queue)/1e6, br.wait.Round(time.Second), br.got, len(fs))
	}
	sleep(ctx, 500*time.Millisecond)
	c1, err := readCounters(ctx, b.r1)
	if err != nil {
		return br, err
	}
	br.c = c1.sub(c0)
	if cb1, err := readCounters(ctx, b.r2); err == nil {
		d := cb1.sub(cb0)
		br.arrived = d.inP
		if d.inP < br.c.outP {
			res.note("%s (queue %.1f MB): the master sent %d sync datagrams (%d B), the backup received %d (%d B): %d dropped by the shaped link's queue",
				phase, float64(queue)/1e6, br.c.outP, br.c.outB, d.inP, d.inB, br.c.outP-d.inP)
		}
	}
	if br.kernel > 0 {
		logf("%s: %s: the backup's kernel complete after %v (carpd: bulk.synced after %v); %d B on the link", im.name(), phase,
			br.kernel.Round(time.Millisecond), br.synced.Round(time.Millisecond), br.c.bytes())
	}
	b.summarize(ctx, im, res, phase)
	b.stopPair()
	for _, r := range []*router{b.r1, b.r2} {
		if err := b.flushCT(ctx, r); err != nil {
			return br, err
		}
	}
	return br, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// pct is the p-th percentile (nearest rank) of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
