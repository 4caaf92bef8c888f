//go:build linux

// Command sync is carpd's state-sync benchmark (`make bench-sync`): carpd's
// conntrack replication next to conntrackd (FTFW), in one lab run, on the
// same workload.
//
// The lab (package lab) is the firewall pair of e2e/sync_test.go: a client
// and a server, r1 (master: LAN and WAN VIPs, SNAT to the WAN VIP) and r2
// (backup) with the same stateful nftables ruleset, and a dedicated sync
// link. Each implementation runs in turn, on both routers, through the same
// phases (the conntrack tables are flushed in between):
//
//   - idle: bytes on the sync link with no flow;
//   - lifecycle: real short TCP connections client → server through r1
//     (connect, 32 bytes each way, close); bytes on the sync link per flow,
//     from the first connect to every flow's DESTROY on both routers, idle
//     chatter subtracted; then the same at -fast-gap (500 flows/s);
//   - latency: single synthetic flows created in r1's kernel (ctnetlink) →
//     the NEW event in r2's kernel; then the same at fixed rates of new
//     flows (-latency-rates, 5 and 500 per second);
//   - events: many flows created in r1's kernel as fast as possible; the
//     master daemon's CPU time per flow and the time until r2's kernel has
//     them all; then both daemons' memory with that table;
//   - bulk: r1 holds a table, the link is shaped (TBF rate on both ends),
//     r2's daemon starts; time until r2's kernel has the whole table.
//
// Bytes are IP-layer bytes of the sync UDP traffic counted by nftables on
// r1's sync interface (both directions); L2 adds 14 bytes per frame.
// Progress goes to stderr, the daemons' output to -logdir, the Markdown
// table to -out.
//
//	go build -o /tmp/carpd-bench . && CARPD_BIN=/tmp/carpd-bench go run ./bench/sync -out bench/sync-results.md
//
// It needs root, iproute2, nft, tc, conntrack and conntrackd (Debian
// packages conntrack, conntrackd). All traffic stays inside the lab's
// namespaces; the lab and every daemon are torn down at the end, also on
// failure or ^C.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/carpd/carpd/bench/internal/benchhost"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

type options struct {
	out         string
	flows       int
	gap         time.Duration
	idle        time.Duration
	latN        int
	latGap      time.Duration
	latRates    []float64
	latRateTime time.Duration
	fastFlows   int
	fastGap     time.Duration
	events      int
	eventsWait  time.Duration
	bulk        int
	bulkRate    string
	bulkWait    time.Duration
	bulkQueue   int
	drainWait   time.Duration
	stall       time.Duration
	window      string
	only        string
	logDir      string
	timeout     time.Duration
	carpdLog    string
	ctdBin      string
	nice        int
}

var began = time.Now()

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%7.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, a...))
}

func main() {
	// carpd accepts its sockets, state file and hooks in temporary
	// directories only when the environment names them (config.TrustedDirsEnv).
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	os.Exit(run())
}

func run() int {
	var o options
	flag.StringVar(&o.out, "out", "", "write the Markdown results to `file` (default: stdout)")
	flag.IntVar(&o.flows, "flows", 500, "short TCP connections in the lifecycle test")
	flag.DurationVar(&o.gap, "gap", 5*time.Millisecond, "time between two connections' starts")
	flag.DurationVar(&o.drainWait, "drain-wait", 20*time.Second, "longest wait, from the first connect, for every lifecycle flow's DESTROY on the master")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "idle window")
	flag.IntVar(&o.latN, "latency-flows", 200, "flows in the latency test")
	flag.DurationVar(&o.latGap, "latency-gap", 25*time.Millisecond, "mean time between two latency flows (uniform in [gap/2, 3gap/2))")
	rates := flag.String("latency-rates", "5,500", "also measure the latency at these rates of new flows per second (comma-separated; empty: none)")
	flag.DurationVar(&o.latRateTime, "latency-rate-time", 20*time.Second, "how long each -latency-rates run creates flows (at least 20 flows, at most 20000)")
	flag.IntVar(&o.fastFlows, "fast-flows", 2000, "short TCP connections in the second lifecycle run, at -fast-gap (0: none)")
	flag.DurationVar(&o.fastGap, "fast-gap", 2*time.Millisecond, "time between two connections' starts in the second lifecycle run (2 ms: 500 flows/s)")
	flag.IntVar(&o.events, "events", 100_000, "flows created at once in the events/memory test")
	flag.DurationVar(&o.eventsWait, "events-wait", 120*time.Second, "longest wait for the backup to have them all")
	flag.IntVar(&o.bulk, "bulk", 20_000, "flows in the bulk test")
	flag.StringVar(&o.bulkRate, "bulk-rate", "1mbit", "rate of the shaped sync link in the bulk test (tc units)")
	flag.IntVar(&o.bulkQueue, "bulk-queue", 1_500_000, "queue of the shaped link in bytes (TBF limit)")
	flag.DurationVar(&o.stall, "bulk-stall", 30*time.Second, "stop waiting for a bulk transfer after this long without a new flow in the backup's kernel")
	flag.DurationVar(&o.bulkWait, "bulk-wait", 180*time.Second, "longest wait for the bulk transfer")
	flag.StringVar(&o.window, "window", "50ms", "carpd's coalescing window (option window)")
	flag.StringVar(&o.only, "only", "", "run only this implementation (carpd or conntrackd)")
	flag.StringVar(&o.logDir, "logdir", "", "keep the daemons' output in `dir` (default: a new temp dir)")
	flag.DurationVar(&o.timeout, "timeout", 25*time.Minute, "bound on the whole run")
	flag.StringVar(&o.carpdLog, "carpd-log-level", "info", "carpd's log_level")
	flag.StringVar(&o.ctdBin, "conntrackd", "/usr/sbin/conntrackd", "conntrackd binary")
	flag.IntVar(&o.nice, "nice", -10, "niceness of the benchmark and the daemons it starts (0: leave it)")
	flag.Parse()
	for _, f := range strings.Split(*rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 || r > 100000 {
			fmt.Fprintf(os.Stderr, "sync: -latency-rates: bad rate %q\n", f)
			return 2
		}
		o.latRates = append(o.latRates, r)
	}
	if len(o.latRates) > 7 {
		fmt.Fprintln(os.Stderr, "sync: -latency-rates: at most 7 rates")
		return 2
	}
	if o.fastFlows > 0 && o.fastGap <= 0 {
		fmt.Fprintln(os.Stderr, "sync: -fast-gap must be positive")
		return 2
	}

	if err := lab.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "sync: %v (run as root)\n", err)
		return 1
	}
	for _, tool := range []string{"nft", "tc", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "sync: %s is missing: %v\n", tool, err)
			return 1
		}
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

	tmp, err := os.MkdirTemp("", "bsync-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if o.logDir == "" {
		if o.logDir, err = os.MkdirTemp("", "carpd-bench-sync-logs-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	} else if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logf("daemon logs in %s", o.logDir)

	carpdBin, err := benchhost.CarpdBinary(ctx, tmp, logf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sync: %v\n", err)
		return 1
	}

	var impls []impl
	if o.only == "" || o.only == "carpd" {
		impls = append(impls, &carpd{bin: carpdBin})
	}
	if o.only == "" || o.only == "conntrackd" {
		if _, err := os.Stat(o.ctdBin); err != nil {
			fmt.Fprintf(os.Stderr, "sync: conntrackd is missing (%v); install it: DEBIAN_FRONTEND=noninteractive apt-get install -y conntrackd\n", err)
			return 1
		}
		impls = append(impls, &conntrackd{bin: o.ctdBin})
	}
	if len(impls) == 0 {
		fmt.Fprintf(os.Stderr, "sync: -only %q: want carpd or conntrackd\n", o.only)
		return 2
	}

	facts := machineFacts(carpdBin)
	facts.loadStart = benchhost.LoadAvg()
	b := &bench{o: o, dir: tmp, carpdBin: carpdBin}
	defer func() {
		b.srv.close()
		if b.l != nil {
			for _, r := range []*router{b.r1, b.r2} {
				if r != nil && r.ns != nil {
					r.ns.Close()
				}
			}
			if err := b.l.Close(); err != nil {
				logf("closing the lab: %v", err)
			}
		}
	}()
	logf("building the lab")
	if err := b.build(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "sync: building the lab: %v\n", err)
		return 1
	}
	if err := b.startServer(); err != nil {
		fmt.Fprintf(os.Stderr, "sync: echo server: %v\n", err)
		return 1
	}
	facts.conntrackMax = b.conntrackMax

	var results []*result
	failed := false
	for _, im := range impls {
		logf("=== %s ===", im.name())
		res, err := b.runImpl(ctx, im)
		if err != nil {
			failed = true
			res.note("run aborted: %v", err)
			logf("%s: ERROR: %v", im.name(), err)
			for _, r := range []*router{b.r1, b.r2} {
				if r.proc != nil {
					logf("%s on %s, last output:\n%s", im.name(), r.name, tail(r.proc.Output(), 30))
				}
			}
		}
		results = append(results, res)
		if ctx.Err() != nil {
			break
		}
	}
	facts.loadEnd = benchhost.LoadAvg()
	facts.duration = time.Since(began)

	md := report(b, impls, results, facts)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		logf("results written to %s", o.out)
	} else {
		fmt.Print(md)
	}
	logf("done in %v", time.Since(began).Round(time.Second))
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

type facts struct {
	nproc        int
	kernel       string
	goVersion    string
	conntrackd   string
	carpd        string
	source       string
	conntrackMax string
	loadStart    string
	loadEnd      string
	duration     time.Duration
}

func machineFacts(carpdBin string) facts {
	f := facts{nproc: runtime.NumCPU(), goVersion: runtime.Version()}
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			f.nproc = n
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		f.kernel = strings.TrimSpace(string(out))
	}
	f.conntrackd = (&conntrackd{}).version()
	f.carpd = (&carpd{bin: carpdBin}).version()
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		f.source = "commit " + strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil {
			var changed []string
			untracked := 0
			for _, l := range strings.Split(strings.TrimRight(string(st), "\n"), "\n") {
				if len(l) < 4 || strings.HasPrefix(l[3:], "bench/") {
					continue
				}
				if strings.HasPrefix(l, "??") {
					untracked++
					continue
				}
				changed = append(changed, "`"+l[3:]+"`")
			}
			if len(changed) > 0 {
				f.source += "; changed in the working tree: " + strings.Join(changed, ", ")
			}
			if untracked > 0 {
				f.source += fmt.Sprintf("; %d untracked path(s) outside bench/", untracked)
			}
		}
	}
	return f
}

// renice sets the niceness of every thread of this process; the processes
