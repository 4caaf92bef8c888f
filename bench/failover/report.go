//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

const (
	// Targets from the issue.
	crashSlack   = 50 * time.Millisecond // crash outage ≤ 3 × interval + 50 ms
	cpuTargetPct = 0.1                   // idle CPU < 0.1 %
	rssTargetKB  = 10 * 1024             // RSS ≤ 10 MB with two vhids
)

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case d <= 0:
		return "0"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// median of a sorted copy; the mean of the middle two for an even count.
func medianDur(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianInt(v []int) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return float64(s[n/2-1]+s[n/2]) / 2
}

func fmtNum(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

// summary of one row's trials of one scenario.
type summary struct {
	n, failed          int
	outages            []time.Duration
	lost               []int
	open, flaps, multi int
	takeovers, vipAt   []time.Duration
	phases             []time.Duration
	silences           []time.Duration
	late               []int
	released           []time.Duration
}

func summarizeRow(r *row, sc scenario) summary {
	s := summary{failed: len(r.failed[sc])}
	for _, t := range r.results[sc] {
		s.n++
		s.outages = append(s.outages, t.outage)
		s.lost = append(s.lost, t.lost)
		if t.open {
			s.open++
		}
		if t.backupAdvertsBefore > 0 {
			s.flaps++
		}
		if t.runs > 1 {
			s.multi++
		}
		if t.takeover >= 0 {
			s.takeovers = append(s.takeovers, t.takeover)
		}
		s.vipAt = append(s.vipAt, t.vipAt)
		s.phases = append(s.phases, t.phase)
		s.silences = append(s.silences, t.wire.silence)
		s.late = append(s.late, t.wire.late)
		if t.released >= 0 {
			s.released = append(s.released, t.released)
		}
	}
	return s
}

func (s summary) outageCell() string {
	if s.n == 0 {
		if s.failed > 0 {
			return fmt.Sprintf("all %d trials failed", s.failed)
		}
		return "–"
	}
	c := "**0** (no loss)"
	if slices.Max(s.outages) > 0 {
		c = fmt.Sprintf("**%s** %s", fmtDur(medianDur(s.outages)), fmtRange(slices.Min(s.outages), slices.Max(s.outages)))
	}
	var notes []string
	if s.failed > 0 {
		notes = append(notes, fmt.Sprintf("n=%d, %d failed", s.n, s.failed))
	}
	if s.open > 0 {
		notes = append(notes, fmt.Sprintf("%d never recovered", s.open))
	}
	if len(notes) > 0 {
		c += " (" + strings.Join(notes, "; ") + ")"
	}
	return c
}

func intsCell(v []int) string {
	if len(v) == 0 {
		return "–"
	}
	c := fmtNum(medianInt(v))
	if mn, mx := slices.Min(v), slices.Max(v); mn != mx {
		c += fmt.Sprintf(" [%d–%d]", mn, mx)
	}
	return c
}

func dursCell(v []time.Duration) string {
	if len(v) == 0 {
		return "–"
	}
	return fmtDur(medianDur(v)) + " " + fmtRange(slices.Min(v), slices.Max(v))
}

// fmtRange formats [min–max], with the unit once when both share it.
func fmtRange(lo, hi time.Duration) string {
	a, b := fmtDur(lo), fmtDur(hi)
	ua, ub := a[strings.LastIndexByte(a, ' ')+1:], b[strings.LastIndexByte(b, ' ')+1:]
	if strings.Contains(a, " ") && ua == ub {
		return fmt.Sprintf("[%s–%s]", strings.TrimSuffix(a, " "+ua), b)
	}
	return fmt.Sprintf("[%s–%s]", a, b)
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// targets evaluates a row against the targets.
func targets(r *row, crashS, gracefulS summary, scs []scenario) string {
	var parts []string
	if slices.Contains(scs, crash) && crashS.n > 0 {
		limit := 3*r.im.interval() + crashSlack
		ok := crashS.failed == 0 && crashS.open == 0 && medianDur(crashS.outages) <= limit
		p := fmt.Sprintf("crash %s (≤ %s)", mark(ok), fmtDur(limit))
		if ok && slices.Max(crashS.outages) > limit {
			p += fmt.Sprintf(", max %s over", fmtDur(slices.Max(crashS.outages)))
		}
		parts = append(parts, p)
	}
	if slices.Contains(scs, graceful) && gracefulS.n > 0 {
		lossless := 0
		for i, l := range gracefulS.lost {
			if l == 0 && gracefulS.late[i] == 0 {
				lossless++
			}
		}
		ok := gracefulS.failed == 0 && lossless == gracefulS.n
		parts = append(parts, fmt.Sprintf("graceful %s (%d/%d lossless)", mark(ok), lossless, gracefulS.n+gracefulS.failed))
	}
	if r.idle != nil {
		parts = append(parts, fmt.Sprintf("CPU %s", mark(r.idle.cpuPct < cpuTargetPct)))
		parts = append(parts, fmt.Sprintf("RSS %s", mark(r.idle.mem.rssKB <= rssTargetKB)))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, " · ")
}

func report(rows []*row, scs []scenario, o options, carpdBin string, elapsed time.Duration) string {
	var b strings.Builder
	trials := o.trials
	fmt.Fprintf(&b, "## Failover: carpd vs ucarp vs keepalived (`make bench-failover`)\n\n")
	fmt.Fprintf(&b, "Measured %s in one run of %s (`bench/failover`), %d trial(s) per cell, each in a fresh lab. "+
		"Medians [min–max]. Outage = the longest run of lost probes as the client sees it "+
		"(from the last answered to the next answered echo request, 10 ms probes), counted after the master went away; "+
		"lost = probes lost then. Crash = the master's daemon SIGKILLed and its link set down at once, after a random wait of "+
		"0..interval (random phase); graceful = SIGTERM to the master's daemon (also after a random wait). "+
		"Idle = the master daemon over %s of steady state with **two** VIPs (10.0.1.1 vhid/vrid 1, 10.0.1.10 vhid/vrid 2), "+
		"CPU as %% of one core, context switches = voluntary + involuntary of all its threads, RSS = VmRSS summed over the daemon's processes on the master. "+
		"False takeovers: bursts of adverts from the backup while the master lives, in the idle window, and the number of trials with any before the master went away. "+
		"Rows \"cores loaded\": the same with `stress-ng --cpu N` running through the trial or window.\n\n",
		time.Now().Format("2006-01-02"), elapsed.Round(time.Second), trials, o.idle)

	b.WriteString("| implementation, setting | interval (backup's master-down) | crash outage | crash lost probes | graceful outage | graceful lost probes | graceful, on the wire: longest silence; late replies | idle CPU (master) | context switches/s (master) | false takeovers: idle window; trials | RSS (master) | targets |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.skip != "" {
			fmt.Fprintf(&b, "| %s | – | skipped: %s | | | | | | | | | |\n", r.im.name(), r.skip)
			continue
		}
		cs, gs := summarizeRow(r, crash), summarizeRow(r, graceful)
		cpu, rss, csw, falseT := "–", "–", "–", "–"
		if r.idle != nil {
			cpu = fmt.Sprintf("%.3f %%", r.idle.cpuPct)
			csw = fmt.Sprintf("%.0f", r.idle.wakeups)
			falseT = fmt.Sprintf("%d in %s", r.idle.falseTakeovers, fmtDur(r.idle.window))
			rss = fmt.Sprintf("%.1f MB", mb(r.idle.mem.rssKB))
			if r.idle.mem.procs > 1 {
				rss += fmt.Sprintf(" (%d procs)", r.idle.mem.procs)
			}
		} else if r.idleErr != "" {
			cpu, rss = "failed", "failed"
		}
		flapped, ran := 0, 0
		for _, sc := range scs {
			s := summarizeRow(r, sc)
			flapped += s.flaps
			ran += s.n
		}
		falseT += fmt.Sprintf("; %d of %d", flapped, ran)
		wire := "–"
		if gs.n > 0 {
			wire = fmt.Sprintf("%s; %s late", dursCell(gs.silences), intsCell(gs.late))
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.im.name(), fmtDur(r.im.interval()), fmtDur(r.im.masterDown()),
			cs.outageCell(), intsCell(cs.lost), gs.outageCell(), intsCell(gs.lost),
			wire, cpu, csw, falseT, rss, targets(r, cs, gs, scs))
	}
	fmt.Fprintf(&b, "\nOutage and lost probes are the lab prober's (`ProbeResult.Longest()`, `Lost`), which counts a reply as an answer however late it comes. "+
		"The \"on the wire\" column comes from a packet tap on the client: the longest time no echo reply at all reached the client, "+
		"and how many replies came more than %s after their request. They matter when the old master stays up without the VIP: "+
		"it forwards the client's packets to the VIP, holds them in its ARP queue until the new master's gratuitous ARP "+
		"and only then delivers them, so the prober sees every reply but the client waited. "+
		"With no disturbance the longest silence is about one probe interval (10 ms).\n\n", fmtDur(lateAfter))
	b.WriteString("Targets (from the issue): crash outage ≤ 3 × interval + 50 ms (median; interval = the master's advertisement interval); " +
		"graceful handover with no lost probe (every trial; a reply later than " + fmtDur(lateAfter) + " counts as lost here); idle CPU < 0.1 %; RSS ≤ 10 MB with two vhids. " +
		"They are carpd's targets; the peers' rows are marked against them for comparison.\n\n")

	// Diagnostics from the client's sniffer.
	b.WriteString("### Details\n\n")
	b.WriteString("| implementation, setting | crash: phase (crash − master's last advert) | crash: backup's first advert after the crash | graceful: backup's first advert after SIGTERM | graceful: old master drops the VIP | idle: master PSS, wake-ups, threads; backup; adverts | anomalies |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.skip != "" {
			continue
		}
		cs, gs := summarizeRow(r, crash), summarizeRow(r, graceful)
		idle := "–"
		if r.idle != nil {
			idle = fmt.Sprintf("PSS %.1f MB; %.0f wake-ups/s, %d threads; backup CPU %.3f %%, RSS %.1f MB; master %.1f adverts/s (longest gap %s), backup %d",
				mb(r.idle.mem.pssKB), r.idle.wakeups, r.idle.threads, r.idle.backupCPUPct, mb(r.idle.backupMem.rssKB),
				float64(r.idle.masterAdv)/r.idle.window.Seconds(), fmtDur(r.idle.masterGap), r.idle.backupAdv)
		} else if r.idleErr != "" {
			idle = "idle run failed: " + r.idleErr
		}
		var anomalies []string
		for _, sc := range scs {
			s := summarizeRow(r, sc)
			if s.flaps > 0 {
				anomalies = append(anomalies, fmt.Sprintf("%s: %d trial(s) with backup adverts before the event (false takeover)", sc, s.flaps))
			}
			if s.multi > 0 {
				anomalies = append(anomalies, fmt.Sprintf("%s: %d trial(s) with more than one outage", sc, s.multi))
			}
			for _, f := range r.failed[sc] {
				anomalies = append(anomalies, fmt.Sprintf("%s trial %s", sc, f))
			}
			for i, t := range r.results[sc] {
				if t.stopErr != "" {
					anomalies = append(anomalies, fmt.Sprintf("%s #%d: %s", sc, i+1, t.stopErr))
				}
				if t.hostStall > 0 {
					anomalies = append(anomalies, fmt.Sprintf("%s #%d: host stall of %s (other load on the machine)", sc, i+1, fmtDur(t.hostStall)))
				}
				if t.r1HoldsAfter {
					anomalies = append(anomalies, fmt.Sprintf("%s #%d: the stopped master kept the VIP", sc, i+1))
				}
			}
		}
		for _, t := range r.retried {
			anomalies = append(anomalies, "set up again after "+t)
		}
		if r.idle != nil && r.idle.backupAdv > 0 {
			anomalies = append(anomalies, fmt.Sprintf("idle: backup sent %d adverts in %d burst(s) (false takeovers)", r.idle.backupAdv, r.idle.falseTakeovers))
		}
		if r.idle != nil && r.idle.lostMastership {
			anomalies = append(anomalies, "idle: r1 was not the master at the end of the window")
		}
		an := "none"
		if len(anomalies) > 0 {
			an = strings.Join(anomalies, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.im.name(), dursCell(cs.phases), dursCell(cs.takeovers),
			dursCell(gs.takeovers), dursCell(gs.released), idle, an)
	}
	b.WriteString("\nSettings:\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- **%s**: %s.\n", r.im.name(), r.im.settings())
	}

	b.WriteString("\n### How to reproduce\n\n")
	fmt.Fprintf(&b, "As root, from the repository root: `make bench-failover`, i.e. "+
		"`go build -o /tmp/carpd-bench . && CARPD_BIN=/tmp/carpd-bench go run ./bench/failover -trials %d -idle %s -out bench/failover-results.md` "+
		"(without `CARPD_BIN` the benchmark builds carpd itself). Needs iproute2 and the Debian packages ucarp and keepalived. "+
		"Lab: one bridge `lan` (STP off, multicast snooping off, bridge netfilter off) in its own namespace; "+
		"client 10.0.1.100/24, r1 10.0.1.2/24 (preferred master), r2 10.0.1.3/24 (backup), VIP 10.0.1.1/24; "+
		"a fresh set of namespaces per trial; each trial waits until r1 holds the VIP, r2 runs as a backup that has heard r1, "+
		"and the client has had 1 s of clean probes. Per-trial progress and the daemons' logs go to stderr and `-logdir`.\n\n", trials, o.idle)
	fmt.Fprintf(&b, "Machine: %s CPU(s) (`nproc`), kernel %s, %s/%s, %s; %s; %s.\n",
		cmdOut("nproc"), cmdOut("uname", "-r"), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		pkgVersions(), cmdOut(carpdBin, "version"))
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start %s, at the end %s; the benchmark ran at nice %d, the daemons were started at nice %d (carpd lowers its own to %d at start); loaded rows: `stress-ng --cpu %d` at nice 0.\n", o.loadAvg[0], o.loadAvg[1], o.nice, daemonNice, carp.DaemonNice, loadCPUs)
	if o.source != "" {
		fmt.Fprintf(&b, "Source: %s (at the start of the run).\n", o.source)
	}
	return b.String()
}

// gitInfo describes the checkout the benchmark ran from: HEAD and how many
// files outside bench/ differed from it (carpd may have been built from a
// working tree with changes).
func gitInfo() string {
	head := cmdOut("git", "rev-parse", "--short", "HEAD")
	if head == "?" {
		return ""
	}
	out, err := exec.Command("git", "status", "--porcelain", "--", ".", ":(exclude)bench").Output()
	if err != nil {
		return "commit " + head
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	if n == 0 {
		return "commit " + head + ", clean"
	}
	return fmt.Sprintf("commit %s with %d changed or new path(s) outside bench/ in the working tree", head, n)
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func pkgVersions() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Version}\n", "ucarp", "keepalived").Output()
	if err != nil && len(out) == 0 {
		return "dpkg-query unavailable"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines, ", ")
}
