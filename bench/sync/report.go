//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// lifecycle figures, idle chatter subtracted.
func (res *result) lcNet() (ipPerFlow, l2PerFlow, pktPerFlow float64, ok bool) {
	return res.net(&res.lifecycleRun)
}

// net is lcNet of the lifecycle run lr.
func (res *result) net(lr *lifecycleRun) (ipPerFlow, l2PerFlow, pktPerFlow float64, ok bool) {
	n := lr.lcCreated
	if n == 0 || res.idleDur <= 0 {
		return 0, 0, 0, false
	}
	scale := lr.lcDur.Seconds() / res.idleDur.Seconds()
	ip := float64(lr.lc.bytes()) - scale*float64(res.idle.bytes())
	l2 := float64(lr.lc.l2()) - scale*float64(res.idle.l2())
	pk := float64(lr.lc.packets()) - scale*float64(res.idle.packets())
	return ip / float64(n), l2 / float64(n), pk / float64(n), true
}

func (res *result) idleRate() (ip, l2, pkts float64) {
	s := res.idleDur.Seconds()
	if s <= 0 {
		return 0, 0, 0
	}
	return float64(res.idle.bytes()) / s, float64(res.idle.l2()) / s, float64(res.idle.packets()) / s
}

// perCPU is flows handled per second of the daemon's CPU time.
func perCPU(n int, cpu time.Duration) float64 {
	if cpu <= 0 {
		return 0
	}
	return float64(n) / cpu.Seconds()
}

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func secs(d time.Duration) string {
	if d < time.Second {
		return ms(d)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func report(b *bench, impls []impl, results []*result, f facts) string {
	o := b.o
	var s strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.impl] = r
	}
	cells := func(fn func(*result) string) string {
		var cs []string
		for _, im := range impls {
			r := byName[im.name()]
			if r == nil {
				cs = append(cs, "not run")
				continue
			}
			cs = append(cs, fn(r))
		}
		return strings.Join(cs, " | ")
	}
	carpdRes := byName["carpd"]

	w("## State sync: carpd vs conntrackd (`make bench-sync`)\n\n")
	w("Measured %s in one run of %s (`bench/sync`), both implementations in the same lab, one after the other, on the same workload; the conntrack tables are flushed and the daemons restarted between phases. ",
		began.Format("2006-01-02"), f.duration.Round(time.Second))
	w("Bytes are IP-layer bytes (IP + UDP headers + payload) of the sync traffic, both directions, counted by nftables on the master's sync interface; L2 adds the 14-byte Ethernet header per frame. carpd's coalescing window: `option window '%s'`.\n\n", o.window)

	var hdr []string
	for _, im := range impls {
		hdr = append(hdr, im.name())
	}
	w("| figure | %s | carpd target | how it was measured |\n|---|%s---|---|\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(impls)))

	// 1. Lifecycle.
	w("| 1. sync bytes per short masqueraded TCP flow (open, 32 B each way, close, DESTROY) | %s | ≤ 40 B %s | %d real connections client → server:5000 through the master (SNAT to the WAN VIP), one every %v; bytes from the first connect until no flow is left in the master's table (TIME_WAIT 2 s), then none in the backup's, plus 1.5 s (both tables dumped every 250 ms meanwhile, which makes the kernel reap expired entries and send their DESTROY at once), minus the idle rate (row 2) × that time, ÷ flows; datagrams likewise |\n",
		cells(func(r *result) string {
			ip, l2, pk, ok := r.lcNet()
			if !ok {
				return "n/a"
			}
			d := fmt.Sprintf("%.2f datagrams/flow", pk)
			if pk < 0.05 {
				d = "no datagram beyond the idle rate: the records rode in frames sent anyway"
			}
			return fmt.Sprintf("**%.1f B** (L2 %.1f B; %s)", ip, l2, d)
		}),
		func() string {
			if carpdRes == nil {
				return ""
			}
			ip, _, _, ok := carpdRes.lcNet()
			return mark(ok && ip <= 40)
		}(), o.flows, o.gap)

	if o.fastFlows > 0 {
		rate := float64(time.Second) / float64(o.fastGap)
		w("| 1b. the same at %.0f new flows/s | %s | ≤ 40 B %s | %d connections one every %v, counted as in row 1 |\n", rate,
			cells(func(r *result) string {
				ip, l2, pk, ok := r.net(&r.fast)
				if !ok {
					return "n/a"
				}
				m := ""
				if r.fast.lcFailed > 0 {
					m = fmt.Sprintf("; %d connections failed", r.fast.lcFailed)
				}
				return fmt.Sprintf("**%.1f B** (L2 %.1f B; %.2f datagrams/flow; %d flows in %s%s)", ip, l2, pk, r.fast.lcCreated, secs(r.fast.lcConnectionsDur), m)
			}),
			func() string {
				if carpdRes == nil {
					return ""
				}
				ip, _, _, ok := carpdRes.net(&carpdRes.fast)
				return mark(ok && ip <= 40)
			}(), o.fastFlows, o.fastGap)
	}

	// 2. Idle.
	w("| 2. idle sync-link traffic, both directions | %s | – | %v with both daemons running, no flow in either table |\n",
		cells(func(r *result) string {
			ip, l2, pk := r.idleRate()
			return fmt.Sprintf("**%.1f B/s** (L2 %.1f B/s; %.2f datagrams/s)", ip, l2, pk)
		}), o.idle)

	// 3. Events.
	w("| 3. flow events per second one core sustains (master) | %s | ≥ 20 000/s %s | %d ESTABLISHED masqueraded flows created in the master's kernel as fast as possible (ctnetlink, batches of 256); flows ÷ the master daemon's CPU time (utime+stime, all threads, /proc/PID/stat) from just before the first create until 1 s after the backup's kernel held them all; in brackets: wall time from the first create until the backup's kernel held all of them (polled every 50 ms from the end of the injection, so never below the injection time), and the rate that gives |\n",
		cells(func(r *result) string {
			if r.evN == 0 {
				return "n/a"
			}
			e2e := "never complete: " + fmt.Sprintf("%d of %d after %s", r.evGot, r.evN, secs(r.evWait))
			if r.evAll > 0 {
				e2e = fmt.Sprintf("all in the backup after %s = %.0f flows/s", secs(r.evAll), float64(r.evN)/r.evAll.Seconds())
			}
			return fmt.Sprintf("**%.0f /CPU-s** (CPU %s; %s)", perCPU(r.evN, r.evMasterCPU), secs(r.evMasterCPU), e2e)
		}),
		func() string {
			if carpdRes == nil || carpdRes.evN == 0 {
				return ""
			}
			return mark(perCPU(carpdRes.evN, carpdRes.evMasterCPU) >= 20000)
		}(), o.events)

	w("| 3b. the same flows, master daemon alone (no peer daemon: event intake only) | %s | ≥ 20 000/s %s | the %d flows created the same way with no daemon on the backup (carpd then holds them until a session exists; conntrackd sends them anyway, into the void); flows ÷ the master daemon's CPU time until it holds them all (carpd: `flows_local` in `carpd status`; conntrackd: internal cache size in `conntrackd -s`, polled every 200 ms) |\n",
		cells(func(r *result) string {
			if r.inN == 0 {
				return "n/a"
			}
			t := fmt.Sprintf("held after %s", secs(r.inAll))
			if r.inAll == 0 {
				t = fmt.Sprintf("held %d of %d after 60 s", r.inGot, r.inN)
			}
			return fmt.Sprintf("**%.0f /CPU-s** (CPU %s; %s)", perCPU(r.inN, r.inCPU), secs(r.inCPU), t)
		}),
		func() string {
			if carpdRes == nil || carpdRes.inN == 0 {
				return ""
			}
			return mark(perCPU(carpdRes.inN, carpdRes.inCPU) >= 20000)
		}(), o.events)

	// 4. Latency.
	w("| 4. sync latency, NEW on the master → entry in the backup's kernel, p50 / p99 (max) | %s | p99 ≤ 50 ms %s | %d single flows created in the master's kernel (ctnetlink), %v apart on average (uniform ±50 %%, no phase lock with carpd's window); time from the create call to the NEW event in the backup's kernel (ctnetlink event listener in the backup's namespace); conntrackd with `DisableExternalCache yes`, so it injects at once as carpd does |\n",
		cells(func(r *result) string {
			if len(r.lat) == 0 {
				return "n/a"
			}
			m := ""
			if r.latMissing > 0 {
				m = fmt.Sprintf("; %d of %d never arrived", r.latMissing, r.latN)
			}
			return fmt.Sprintf("**%s / %s** (%s)%s", ms(pct(r.lat, 50)), ms(pct(r.lat, 99)), ms(r.lat[len(r.lat)-1]), m)
		}),
		func() string {
			if carpdRes == nil || len(carpdRes.lat) == 0 {
				return ""
			}
			return mark(pct(carpdRes.lat, 99) <= 50*time.Millisecond && carpdRes.latMissing == 0)
		}(), o.latN, o.latGap)

	for i, rate := range o.latRates {
		target := "–"
		if rate <= 5 {
			target = "p99 ≤ 5 ms"
			if carpdRes != nil && i < len(carpdRes.rates) && len(carpdRes.rates[i].lat) > 0 {
				rl := carpdRes.rates[i]
				target += " " + mark(pct(rl.lat, 99) <= 5*time.Millisecond && rl.missing == 0)
			}
		}
		w("| 4b. the same at %g new flows/s, p50 / p99 (max) | %s | %s | single flows as in row 4, %v apart on average for %v (at least 20, at most %d flows; uniform ±50 %%, on a fixed schedule); in brackets the rate achieved |\n",
			rate, cells(func(r *result) string {
				if i >= len(r.rates) || len(r.rates[i].lat) == 0 {
					return "n/a"
				}
				rl := r.rates[i]
				m := ""
				if rl.missing > 0 {
					m = fmt.Sprintf("; %d of %d never arrived", rl.missing, rl.n)
				}
				return fmt.Sprintf("**%s / %s** (%s; %d flows at %.0f/s)%s", ms(pct(rl.lat, 50)), ms(pct(rl.lat, 99)), ms(rl.lat[len(rl.lat)-1]), len(rl.lat), rl.achieved, m)
			}), target, time.Duration(float64(time.Second)/rate), o.latRateTime, maxRateFlows)
	}

	// 5. Bulk.
	w("| 5. bulk: backup starts next to a master holding %d flows, link shaped to %s | %s | – | `tc qdisc replace dev sync root tbf rate %s burst 1600 limit %d` on both routers (this kernel has no netem; a one-frame bucket and a %.1f MB queue, about netem's default 1000 full-size packets); the flows are in the master's kernel before its daemon starts; time from starting the backup's daemon until the backup's kernel holds all of them (carpd: also until `carpd status` says `bulk.synced`); bytes on the link meanwhile. carpd with `option bandwidth '%s'`; conntrackd asks with `StartupResync yes`. A transfer that makes no progress for %v is given up and repeated once with a queue that holds the whole burst |\n",
		o.bulk, o.bulkRate,
		cells(func(r *result) string {
			if r.bulkN == 0 {
				return "n/a"
			}
			var t string
			if r.bulkKernel > 0 {
				t = fmt.Sprintf("**%s**", secs(r.bulkKernel))
			} else {
				how := "after"
				if r.bulkStalled {
					how = fmt.Sprintf("stalled (no progress for %v); gave up after", o.stall)
				}
				t = fmt.Sprintf("**never complete: %d of %d** (%s %s)", r.bulkGot, r.bulkN, how, secs(r.bulkWait))
			}
			if r.impl == "carpd" && r.bulkSynced > 0 {
				t += fmt.Sprintf(" (bulk.synced after %s)", secs(r.bulkSynced))
			}
			t = fmt.Sprintf("%s; %.2f MB on the link (%.1f B/flow)", t, float64(r.bulk.bytes())/1e6, float64(r.bulk.bytes())/float64(r.bulkN))
			if r.bulk.outP > r.bulkArrived {
				t += fmt.Sprintf(", %d of the master's %d datagrams dropped by the queue", r.bulk.outP-r.bulkArrived, r.bulk.outP)
			}
			if r.retryQueue > 0 {
				if r.retryKernel > 0 {
					t += fmt.Sprintf("; with a %.1f MB queue: %s, %.2f MB", float64(r.retryQueue)/1e6, secs(r.retryKernel), float64(r.retry.bytes())/1e6)
				} else {
					t += fmt.Sprintf("; with a %.1f MB queue: %d of %d after %s", float64(r.retryQueue)/1e6, r.retryGot, r.bulkN, secs(r.retryWait))
				}
			}
			return t
		}), o.bulkRate, o.bulkQueue, float64(o.bulkQueue)/1e6, o.bulkRate, o.stall)

	// 6. RSS.
	w("| 6. RSS with %d flows: master / backup (peak) | %s | ≤ 32 MB %s | VmRSS (VmHWM) from /proc/PID/status of each daemon (and its children) 3 s after the events test, the master replicating the %d flows of its kernel, the backup holding them in its kernel |\n",
		o.events,
		cells(func(r *result) string {
			if r.rssMaster == 0 {
				return "n/a"
			}
			p := ""
			if r.procsMaster > 1 || r.procsBackup > 1 {
				p = fmt.Sprintf(" (%d/%d processes)", r.procsMaster, r.procsBackup)
			}
			return fmt.Sprintf("**%s / %s** (%s / %s)%s", mb(r.rssMaster), mb(r.rssBackup), mb(r.hwmMaster), mb(r.hwmBackup), p)
		}),
		func() string {
			if carpdRes == nil || carpdRes.rssMaster == 0 {
				return ""
			}
			return mark(carpdRes.rssMaster <= 32<<20 && carpdRes.rssBackup <= 32<<20)
		}(), o.events)

	w("| 6b. RSS of the master daemon alone with the %d flows (peak) | %s | ≤ 32 MB %s | VmRSS (VmHWM) 2 s after test 3b: the master daemon holding its table, no peer |\n",
		o.events,
		cells(func(r *result) string {
			if r.inRSS == 0 {
				return "n/a"
			}
			return fmt.Sprintf("**%s** (%s)", mb(r.inRSS), mb(r.inHWM))
		}),
		func() string {
			if carpdRes == nil || carpdRes.inRSS == 0 {
				return ""
			}
			return mark(carpdRes.inRSS <= 32<<20)
		}())
	if r := byName["conntrackd"]; r != nil {
		ip, l2, _, ok := r.lcNet()
		idle, idleL2, _ := r.idleRate()
		w("\nconntrackd against figures measured for it earlier, outside this lab, as a check of this lab: lifecycle ≈ 388 B/flow at the IP layer (curl → python-http through masquerade), here %s; idle ≈ 88 B/s IP / 115 B/s L2, here %.0f / %.0f B/s; latency to the wire 0.30 ms, here %s to the backup's kernel (p50).\n",
			func() string {
				if !ok {
					return "n/a"
				}
				return fmt.Sprintf("%.0f B (L2 %.0f B)", ip, l2)
			}(), idle, idleL2, func() string {
				if len(r.lat) == 0 {
					return "n/a"
				}
				return ms(pct(r.lat, 50))
			}())
	}

	w("\n### Details\n\n")
	w("| detail | %s |\n|---|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(impls)))
	w("| lifecycle: flows; kernel TCP events on the master (per flow) | %s |\n", cells(func(r *result) string {
		if r.lcCreated == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%d (%d failed); %d (%.1f)", r.lcCreated, r.lcFailed, r.lcEvents, float64(r.lcEvents)/float64(r.lcCreated))
	}))
	w("| lifecycle: raw bytes on the link (idle not subtracted), datagrams, over | %s |\n", cells(func(r *result) string {
		return fmt.Sprintf("%d B IP (%.1f B/flow), %d datagrams, %s", r.lc.bytes(), float64(r.lc.bytes())/float64(max(r.lcCreated, 1)), r.lc.packets(), secs(r.lcDur))
	}))
	w("| lifecycle: flows that reached the backup's kernel; still in the master's / backup's kernel at the end | %s |\n", cells(func(r *result) string {
		return fmt.Sprintf("%d of %d; %d / %d", r.lcBackupSeen, r.lcCreated, r.lcMasterLeft, r.lcBackupLeft)
	}))
	w("| lifecycle: daemon CPU, master / backup (%d flows in %s) | %s |\n", o.flows, "the window above", cells(func(r *result) string {
		return fmt.Sprintf("%s / %s", secs(r.lcMasterCPU), secs(r.lcBackupCPU))
	}))
	w("| latency: p90, mean | %s |\n", cells(func(r *result) string {
		if len(r.lat) == 0 {
			return "n/a"
		}
		var sum time.Duration
		for _, d := range r.lat {
			sum += d
		}
		return fmt.Sprintf("%s, %s", ms(pct(r.lat, 90)), ms(sum/time.Duration(len(r.lat))))
	}))
	if win, err := time.ParseDuration(o.window); err == nil {
		w("| latency: flows later than carpd's window + 5 ms (%v) | %s |\n", win+5*time.Millisecond, cells(func(r *result) string {
			n := 0
			for _, d := range r.lat {
				if d > win+5*time.Millisecond {
					n++
				}
			}
			return fmt.Sprintf("%d of %d", n, len(r.lat))
		}))
	}
	w("| events: injection time (rate); backup daemon CPU (flows per CPU-s) | %s |\n", cells(func(r *result) string {
		if r.evN == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%s (%.0f/s); %s (%.0f/CPU-s)", secs(r.evInject), float64(r.evN)/r.evInject.Seconds(), secs(r.evBackupCPU), perCPU(r.evN, r.evBackupCPU))
	}))
	w("| events: bytes on the link (per flow) | %s |\n", cells(func(r *result) string {
		if r.evN == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f MB (%.1f B)", float64(r.ev.bytes())/1e6, float64(r.ev.bytes())/float64(r.evN))
	}))
	w("| events: threads master / backup | %s |\n", cells(func(r *result) string {
		return fmt.Sprintf("%d / %d", r.threadsMaster, r.threadsBkp)
	}))
	w("| bulk: master daemon start → it holds the table | %s |\n", cells(func(r *result) string {
		return secs(r.bulkLoad)
	}))

	w("\nSettings:\n\n")
	for _, im := range impls {
		w("- **%s** (%s): %s.\n", im.name(), im.version(), im.settings(b))
	}
	w("- Lab (package lab): switches lan, wan, sync (bridges, STP and multicast snooping off); client 10.0.1.100, server 10.0.2.100:5000 (echo), r1 (master) 10.0.1.2/10.0.2.2/10.0.3.2 with the LAN VIP 10.0.1.1 and WAN VIP 10.0.2.1 added by hand, r2 (backup) 10.0.1.3/10.0.2.3/10.0.3.3; both routers run the nftables ruleset of e2e/sync_test.go (forward policy drop, established accepted, invalid dropped, new TCP only as a SYN from the LAN, SNAT LAN→WAN to 10.0.2.1) and `net.netfilter.nf_conntrack_tcp_timeout_time_wait=2` (so a flow's DESTROY comes 2 s after its close, not 120 s); nf_conntrack_max %s (global; read-only inside a namespace on this kernel).\n", f.conntrackMax)
	w("- Synthetic flows (latency, events, bulk): TCP ESTABLISHED, ASSURED, SNAT to the WAN VIP with the port preserved (like masquerade), LAN source 100.64.0.0+i (latency: 100.120.0.0+i), destination 198.51.100.(1+i%%250):443, timeout 3600 s, created through internal/ctsync/kernel (`Apply`, NAT via CTA_NAT_SRC, BE_LIBERAL).\n")

	var notes []string
	for _, r := range results {
		for _, n := range r.notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", r.impl, n))
		}
	}
	if len(notes) > 0 {
		w("\nAnomalies seen in this run:\n\n%s\n", strings.Join(notes, "\n"))
	}
	w("\nThe daemons' own counters at the end of each phase:\n\n")
	for _, r := range results {
		for _, sm := range r.summaries {
			w("- %s, %s\n", r.impl, "`"+strings.ReplaceAll(sm, "`", "'")+"`")
		}
	}

	w("\n### How to reproduce\n\n")
	w("As root, from the repository root: `make bench-sync`, i.e. `go build -o /tmp/carpd-bench . && CARPD_BIN=/tmp/carpd-bench go run ./bench/sync -out bench/sync-results.md` (without `CARPD_BIN` the benchmark builds carpd itself). Needs iproute2, nft, tc and the Debian packages conntrack and conntrackd (`DEBIAN_FRONTEND=noninteractive apt-get install -y conntrackd`). Flags: -flows %d -gap %v -idle %v -latency-flows %d -latency-gap %v -latency-rates %s -latency-rate-time %v -fast-flows %d -fast-gap %v -events %d -bulk %d -bulk-rate %s -window %s. Progress goes to stderr, the daemons' output to -logdir.\n\n",
		o.flows, o.gap, o.idle, o.latN, o.latGap, rateList(o.latRates), o.latRateTime, o.fastFlows, o.fastGap, o.events, o.bulk, o.bulkRate, o.window)
	w("Machine: %d CPU(s) (`nproc`), kernel %s (`uname -r`), linux/amd64, %s; `dpkg-query -W conntrackd`: %s; `carpd version`: %s.\n", f.nproc, f.kernel, f.goVersion, f.conntrackd, f.carpd)
	w("Load average (1, 5, 15 min) at the start %s, at the end %s", f.loadStart, f.loadEnd)
	if o.nice != 0 {
		w("; the benchmark and carpd ran at nice %d (conntrackd switches itself to SCHED_RR 99)", o.nice)
	}
	w(".\n")
	if f.source != "" {
		w("Source: %s.\n", f.source)
	}
	return s.String()
}

func rateList(rs []float64) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%g", r))
	}
	return "'" + strings.Join(s, ",") + "'"
}
