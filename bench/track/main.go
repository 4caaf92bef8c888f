//go:build linux

// Command track is carpd's upstream-path benchmark (`make bench-track`).
//
// In one run it builds a fresh network-namespace lab per trial (see
// topo.go: a client behind two routers sharing a LAN VIP and a WAN VIP, each
// router with its own upstream gateway to an isp router and a server beyond
// it) and measures, side by side, the outage the client sees when the
// master's upstream path stops answering while every link of the master
// stays up:
//
//   - carpd with a ping tracker at interval 1 s and at 0.2 s (every other
//     tracker option its default);
//   - keepalived with a vrrp_script that pings the same target
//     (`ping -c1 -W1`, interval 1, fall 3, rise 3, a weight that fails over).
//
// The client probes the server with ICMP echo every 10 ms (the lab's
// prober); the outage is the longest run of lost probes after r1's gateway
// started dropping everything (after a random wait of 0..1 s, so the failure
// falls anywhere in a probing round). Then the path comes back and the
// benchmark records when r1 holds the VIPs again (preempt) and the outage of
// that move. It writes a Markdown table to -out and per-trial detail to
// stderr; -logdir keeps every daemon's output.
//
// It needs root, iproute2, nftables, and /usr/sbin/keepalived (Debian
// package keepalived; a missing keepalived skips its row). All traffic
// stays inside the lab's namespaces.
//
//	go run ./bench/track -out bench/track-results.md
//
// CARPD_BIN names the carpd binary to test; without it carpd is built from
// the module root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/bench/internal/benchhost"
	"github.com/carpd/carpd/internal/lab"
)

const (
	labPrefix     = "btrack"
	probeInterval = 10 * time.Millisecond
	// cleanFor is how long the client must have reached the server
	// without a loss before the path is cut.
	cleanFor = time.Second
	// settle is how long the probe keeps running after a move, to see
	// the outage end and any flap after it.
	settle = 1500 * time.Millisecond
	// moveWait bounds the wait for a takeover or a failback.
	moveWait = 30 * time.Second
)

func main() {
	// carpd accepts its sockets in temporary directories only when the
	// environment names them (config.TrustedDirsEnv).
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	os.Exit(run())
}

type options struct {
	out        string
	trials     int
	only       string
	logDir     string
	timeout    time.Duration
	seed       uint64
	logLevel   string
	keepalived string
	nice       int
}

// row is one implementation at one setting and its trials.
type row struct {
	key     string
	im      impl
	skip    string
	results []trialResult
	failed  []string
}

func run() int {
	var o options
	flag.StringVar(&o.out, "out", "", "write the Markdown results to `file` (default: stdout only)")
	flag.IntVar(&o.trials, "trials", 5, "trials per row")
	flag.StringVar(&o.only, "only", "", "comma-separated row keys to run (carpd1, carpd02, kad); empty: all")
	flag.StringVar(&o.logDir, "logdir", "", "keep every daemon's output under `dir` (default: a new temp dir)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Uint64Var(&o.seed, "seed", 0, "random-phase seed (0: from the clock)")
	flag.StringVar(&o.logLevel, "carpd-log-level", "info", "carpd's log_level in the lab")
	flag.StringVar(&o.keepalived, "keepalived", "/usr/sbin/keepalived", "keepalived binary")
	flag.IntVar(&o.nice, "nice", -10, "niceness of the benchmark and the daemons it starts (0: leave it)")
	flag.Parse()
	if o.trials < 1 {
		fmt.Fprintln(os.Stderr, "track: -trials must be at least 1")
		return 2
	}
	if err := lab.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "track: %v (run as root)\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.nice != 0 {
		if err := benchhost.Renice(o.nice); err != nil {
			logf("WARNING: renice %d: %v", o.nice, err)
		}
	}
	loadBefore := benchhost.LoadAvg()
	began := time.Now()
	tmp, err := os.MkdirTemp("", "carpd-bench-track-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if o.logDir == "" {
		if o.logDir, err = os.MkdirTemp("", "carpd-bench-track-logs-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	var carpdBin string
	if o.only == "" || strings.Contains(o.only, "carpd") {
		if carpdBin, err = benchhost.CarpdBinary(ctx, tmp, logf); err != nil {
			fmt.Fprintf(os.Stderr, "track: %v\n", err)
			return 1
		}
	}
	seed := o.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0x747261636b))
	logf("carpd %s, seed %d, logs in %s", carpdBin, seed, o.logDir)

	var rows []*row
	add := func(key string, im impl, bin string) {
		if o.only != "" && !containsStr(strings.Split(o.only, ","), key) {
			return
		}
		r := &row{key: key, im: im}
		if _, err := os.Stat(bin); err != nil {
			r.skip = err.Error()
		}
		rows = append(rows, r)
	}
	add("carpd1", &carpdImpl{bin: carpdBin, label: "carpd, ping tracker interval 1 s", interval: "1", logLevel: o.logLevel}, carpdBin)
	add("carpd02", &carpdImpl{bin: carpdBin, label: "carpd, ping tracker interval 0.2 s", interval: "0.2", logLevel: o.logLevel}, carpdBin)
	add("kad", &keepalivedImpl{bin: o.keepalived, label: "keepalived, vrrp_script ping interval 1 s"}, o.keepalived)

	// Trials interleave the rows (trial 1 of every row, then trial 2,
	// ...), so that a slow stretch of the shared machine does not land
	// on one implementation only.
	for i := range o.trials {
		for _, r := range rows {
			if r.skip != "" || ctx.Err() != nil {
				continue
			}
			dir := filepath.Join(o.logDir, fmt.Sprintf("%s-%d", r.key, i+1))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			start := time.Now()
			res, err := runTrial(ctx, r.im, dir, rng)
			for retry := 1; retry <= 2 && ctx.Err() == nil; retry++ {
				var se setupError
				if !errors.As(err, &se) {
					break
				}
				logf("%s #%d: %v (logs %s); setting up again (%d/2)", r.im.name(), i+1, err, dir, retry)
				dir = fmt.Sprintf("%s-%d-retry%d", filepath.Join(o.logDir, r.key), i+1, retry)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				res, err = runTrial(ctx, r.im, dir, rng)
			}
			if err != nil {
				logf("%s #%d: FAILED after %v: %v (logs %s)", r.im.name(), i+1, time.Since(start).Round(time.Millisecond), err, dir)
				r.failed = append(r.failed, fmt.Sprintf("#%d: %s", i+1, firstLine(err.Error())))
				continue
			}
			r.results = append(r.results, res)
			logf("%s #%d: outage %v (%d lost, %d run(s)), VIPs on r2 +%v; path back: VIPs on r1 +%v, outage %v (%d lost), %d move(s) [%v, load %s]",
				r.im.name(), i+1, res.outage.Round(time.Millisecond), res.lost, res.runs, res.takeover.Round(time.Millisecond),
				fmtBack(res.back), res.backOutage.Round(time.Millisecond), res.backLost, res.backMoves,
				time.Since(start).Round(100*time.Millisecond), benchhost.LoadAvg())
		}
	}
	if ctx.Err() != nil {
		logf("interrupted: %v", ctx.Err())
	}
	md := report(rows, o, seed, time.Since(began), loadBefore, benchhost.LoadAvg())
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		logf("wrote %s", o.out)
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// setupError is a failure before the path was cut: such a trial is set up
// again.
type setupError struct{ err error }

func (e setupError) Error() string { return "setup: " + e.err.Error() }
func (e setupError) Unwrap() error { return e.err }

// trialResult is one trial.
type trialResult struct {
	outage   time.Duration // longest run of lost probes after the cut
	lost     int           // probes lost after the cut (before the heal)
	runs     int           // separate outages after the cut
	takeover time.Duration // cut → r2 holds both VIPs and r1 none
	// back is heal → r1 holds both VIPs again and r2 none (-1: not
	// within moveWait).
	back       time.Duration
	backOutage time.Duration // longest run of lost probes after the heal
	backLost   int
	// backMoves counts the changes of the LAN VIP's holder seen (every
	// 10 ms) from the heal until r1 had held it for settle.
	backMoves int
	setup     time.Duration // lab built and daemons settled
}

func runTrial(ctx context.Context, im impl, dir string, rng *rand.Rand) (res trialResult, err error) {
	began := time.Now()
	tb, err := newTestbed(dir)
	if err != nil {
		return res, setupError{err}
	}
	defer func() {
		t0 := time.Now()
		if cerr := tb.close(); cerr != nil && err == nil {
			err = cerr
		}
		logf("    lab up in %v; torn down in %v", res.setup.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	}()
	if err := im.start(tb.r1); err != nil {
		return res, setupError{fmt.Errorf("start r1: %w", err)}
	}
	if err := pollCtx(ctx, 15*time.Second, 20*time.Millisecond, func() (bool, error) {
		if !tb.r1.alive() {
			return false, fmt.Errorf("r1 exited:\n%s", tb.r1.output())
		}
		return holdsBoth(tb.r1), nil
	}); err != nil {
		return res, setupError{fmt.Errorf("r1 taking both VIPs: %w", err)}
	}
	r2Since := time.Now()
	if err := im.start(tb.r2); err != nil {
		return res, setupError{fmt.Errorf("start r2: %w", err)}
	}
	if err := pollCtx(ctx, 20*time.Second, 50*time.Millisecond, func() (bool, error) { return im.ready(tb, r2Since) }); err != nil {
		return res, setupError{fmt.Errorf("r1 master, r2 backup, check up: %w", err)}
	}
	res.setup = time.Since(began)
	p, err := tb.client.StartProbe(netip.MustParseAddr(serverIP), probeInterval, 2*time.Minute)
	if err != nil {
		return res, setupError{err}
	}
	defer p.Stop()
	time.Sleep(cleanFor + 250*time.Millisecond)
	if s := p.Snapshot(); s.Lost > 0 || s.Received < int(cleanFor/probeInterval)/2 {
		return res, setupError{fmt.Errorf("client to server not clean before the cut: %v", s)}
	}

	// Cut r1's path at a random point of the probing round.
	time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
	cut := time.Now()
	if err := tb.killPath(tb.gw1); err != nil {
		return res, err
	}
	if err := pollCtx(ctx, moveWait, 10*time.Millisecond, func() (bool, error) {
		return holdsBoth(tb.r2) && holdsNone(tb.r1), nil
	}); err != nil {
		return res, fmt.Errorf("r2 taking both VIPs after the cut: %w\nr1:\n%s\nr2:\n%s", err, tail(tb.r1.output()), tail(tb.r2.output()))
	}
	res.takeover = time.Since(cut)
	if err := waitFlowing(ctx, p); err != nil {
		return res, fmt.Errorf("after the takeover: %w", err)
	}

	heal := time.Now()
	if err := tb.healPath(tb.gw1); err != nil {
		return res, err
	}
	res.back = -1
	holder := "r2"
	var r1Since time.Time
	_ = pollCtx(ctx, moveWait, 10*time.Millisecond, func() (bool, error) {
		h := "?"
		switch l1, _, _ := holds(tb.r1); {
		case l1:
			h = "r1"
		default:
			if l2, _, _ := holds(tb.r2); l2 {
				h = "r2"
			}
		}
		if h != "?" && h != holder {
			res.backMoves++
			holder = h
			r1Since = time.Now()
		}
		if res.back < 0 && holdsBoth(tb.r1) && holdsNone(tb.r2) {
			res.back = time.Since(heal)
		}
		return res.back >= 0 && holder == "r1" && time.Since(r1Since) > settle, nil
	})
	if err := waitFlowing(ctx, p); err != nil {
		return res, fmt.Errorf("after the failback: %w", err)
	}
	pr := p.Stop()
	for _, o := range pr.Outages {
		switch {
		case o.End.After(cut) && o.Start.Before(heal):
			res.outage = max(res.outage, o.Duration)
			res.lost += o.Lost
			res.runs++
		case o.End.After(heal):
			res.backOutage = max(res.backOutage, o.Duration)
			res.backLost += o.Lost
		}
	}
	if res.runs == 0 {
		// Every probe answered: the path was never needed?
		return res, fmt.Errorf("no probe lost after the cut: the cut did not cut the client's path")
	}
	return res, nil
}

// waitFlowing waits until the probe has had settle of answered probes.
func waitFlowing(ctx context.Context, p *lab.Probe) error {
	return pollCtx(ctx, moveWait, 50*time.Millisecond, func() (bool, error) {
		from := time.Now().Add(-settle)
		s := p.Snapshot()
		if len(s.Outages) > 0 && s.Outages[len(s.Outages)-1].Open {
			return false, nil
		}
		return p.RepliesSince(from) >= int(settle/probeInterval)*8/10, nil
	})
}

func pollCtx(ctx context.Context, d, step time.Duration, cond func() (bool, error)) error {
	return pollUntil(d, step, func() (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return cond()
	})
}

func tail(s string) string {
	const n = 3000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func fmtBack(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if strings.TrimSpace(x) == v {
			return true
		}
	}
	return false
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
