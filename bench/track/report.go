//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

func medianDur(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// durCell is "**median** [min–max]".
func durCell(v []time.Duration) string {
	if len(v) == 0 {
		return "–"
	}
	lo, hi := v[0], v[0]
	for _, d := range v {
		lo, hi = min(lo, d), max(hi, d)
	}
	return fmt.Sprintf("**%s** [%s–%s]", fmtDur(medianDur(v)), fmtDur(lo), fmtDur(hi))
}

func intCell(v []int) string {
	if len(v) == 0 {
		return "–"
	}
	d := make([]time.Duration, len(v))
	lo, hi := v[0], v[0]
	for i, x := range v {
		d[i] = time.Duration(x)
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%d [%d–%d]", int(medianDur(d)), lo, hi)
}

func report(rows []*row, o options, seed uint64, elapsed time.Duration, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s in one run of %v (`bench/track`), %d trial(s) per row, each in a fresh lab, rows interleaved. "+
		"Medians [min–max]. Outage = the longest run of lost probes as the client sees it (ICMP echo to the server beyond the routers every 10 ms, "+
		"from the last answered to the next answered request), counted from the cut of r1's upstream path (r1's gateway drops every IP packet; "+
		"every link of r1 stays up), after a random wait of 0..1 s. Then the path comes back: \"back\" is when r1 holds both VIPs again (preempt), "+
		"moves = changes of the LAN VIP's holder seen from then on (1 = taken back exactly once).\n\n",
		time.Now().UTC().Format("2006-01-02"), elapsed.Round(time.Second), o.trials)
	b.WriteString("| implementation, check | outage on path loss | lost probes | VIPs on the backup after the cut | path back: VIPs on r1 after | outage then | moves | failed trials |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	medians := map[string]time.Duration{}
	for _, r := range rows {
		if r.skip != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s | | | | | | |\n", r.im.name(), r.skip)
			continue
		}
		var out, take, back, backOut []time.Duration
		var lost, moves []int
		for _, t := range r.results {
			out = append(out, t.outage)
			take = append(take, t.takeover)
			if t.back >= 0 {
				back = append(back, t.back)
			}
			backOut = append(backOut, t.backOutage)
			lost = append(lost, t.lost)
			moves = append(moves, t.backMoves)
		}
		if len(out) > 0 {
			medians[r.key] = medianDur(out)
		}
		failed := "none"
		if len(r.failed) > 0 {
			failed = strings.Join(r.failed, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.im.name(), durCell(out), intCell(lost), durCell(take), durCell(back), durCell(backOut), intCell(moves), failed)
	}
	b.WriteString("\n")
	if c, k := medians["carpd1"], medians["kad"]; c > 0 && k > 0 {
		ratio := float64(c) / float64(k) * 100
		verdict := "met"
		if ratio > 60 {
			verdict = "NOT met"
		}
		fmt.Fprintf(&b, "Target (issue #11): carpd at interval 1 ≤ 60 %% of keepalived's outage at interval 1: %s / %s = **%.0f %%**, %s.\n\n", fmtDur(c), fmtDur(k), ratio, verdict)
	}
	b.WriteString("Settings:\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- **%s**: %s.\n", r.im.name(), r.im.settings())
	}
	fmt.Fprintf(&b, "\nLab (a fresh set of namespaces per trial): client 10.0.1.100 on `lan` behind r1 10.0.1.2 (preferred master) and r2 10.0.1.3, LAN VIP 10.0.1.1 "+
		"(the client's gateway); r1 10.0.2.2 and r2 10.0.2.3 on `wan` with WAN VIP 10.0.2.1 (the routers SNAT the LAN to it); r1's default route is gw1 10.0.2.251, r2's gw2 10.0.2.252; "+
		"gw1 and gw2 reach the isp router %s (the tracked target) on `core`, the isp the server %s; the isp routes the WAN subnet back through gw2. A sync link 10.0.3.0/24 is wired but unused (no state sync: ICMP needs none). "+
		"Each trial waits until r1 holds both VIPs with its check passing, r2 is a backup, and the client has had 1 s of clean probes.\n\n", targetIP, serverIP)
	fmt.Fprintf(&b, "How to reproduce: as root, `make bench-track`, i.e. `go build -o bin/carpd . && CARPD_BIN=bin/carpd go run ./bench/track -out bench/track-results.md` "+
		"(-trials N, -only carpd1,carpd02,kad, -logdir DIR, -seed N). Needs iproute2, nftables and the Debian package keepalived.\n\n")
	fmt.Fprintf(&b, "Machine: %d CPU(s), kernel %s, %s/%s, %s; %s; seed %d. Load average at the start %s, at the end %s; the benchmark and its daemons ran at nice %d. Source: %s.\n",
		runtime.NumCPU(), cmdOut("uname", "-r"), runtime.GOOS, runtime.GOARCH, runtime.Version(), firstLine(cmdOut(o.keepalived, "--version")),
		seed, loadBefore, loadAfter, o.nice, gitInfo())
	return b.String()
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func gitInfo() string {
	c := cmdOut("git", "rev-parse", "--short", "HEAD")
	if d := cmdOut("git", "status", "--porcelain", "--untracked-files=no"); d != "" && d != "?" {
		c += fmt.Sprintf(" with %d changed path(s)", len(strings.Split(d, "\n")))
	}
	return "commit " + c
}
