//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/lab"
)

// pollUntil calls cond every step until it returns true or an error, or d
// has passed (an error saying so).
func pollUntil(d, step time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(step)
	}
}

// lanAddrs returns the addresses on the host's "lan" interface. It reads
// them over rtnetlink from inside the namespace: no fork, cheap enough to
// poll every few milliseconds.
func lanAddrs(h *lab.Host) (map[netip.Addr]bool, error) {
	have := map[netip.Addr]bool{}
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName("lan")
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					have[ip.Unmap()] = true
				}
			}
		}
		return nil
	})
	return have, err
}

// ---------------------------------------------------------------------
// Advertisement sniffer

// An advert is one IP protocol 112 packet (CARP or VRRP) seen on the wire.
type advert struct {
	t   time.Time
	src netip.Addr
}

// A sniffer records every protocol-112 packet a host's interfaces see,
// through an AF_PACKET socket opened in the host's namespace. On the client
// it is a neutral observer of the segment: who advertises, and when.
type sniffer struct {
	fd   int
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	seen []advert
	// echoes: the ICMP echo requests to target and their replies, by
	// sequence number (the lab's prober is the only pinger).
	target   netip.Addr
	requests map[uint16]time.Time
	replies  map[uint16]time.Time
}

const maxAdverts = 1 << 16

func startSniffer(h *lab.Host, target netip.Addr) (*sniffer, error) {
	fd := -1
	err := h.Do(func() error {
		var err error
		// ETH_P_ALL: only such taps see outgoing packets too.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sniffer in %s: %w", h, err)
	}
	tv := unix.Timeval{Usec: 50_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	s := &sniffer{fd: fd, stop: make(chan struct{}), done: make(chan struct{}),
		target: target, requests: map[uint16]time.Time{}, replies: map[uint16]time.Time{}}
	go s.loop()
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *sniffer) loop() {
	defer close(s.done)
	defer unix.Close(s.fd)
	buf := make([]byte, 2048)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue
		}
		src := netip.AddrFrom4([4]byte(buf[12:16]))
		dst := netip.AddrFrom4([4]byte(buf[16:20]))
		switch buf[9] {
		case 112: // CARP, VRRP
			s.mu.Lock()
			if len(s.seen) < maxAdverts {
				s.seen = append(s.seen, advert{t: now, src: src})
			}
			s.mu.Unlock()
		case 1: // ICMP
			hl := int(buf[0]&0x0f) * 4
			if n < hl+8 {
				continue
			}
			typ, seq := buf[hl], binary.BigEndian.Uint16(buf[hl+6:])
			var m map[uint16]time.Time
			switch {
			case typ == 8 && dst == s.target:
				m = s.requests
			case typ == 0 && src == s.target:
				m = s.replies
			default:
				continue
			}
			s.mu.Lock()
			if _, dup := m[seq]; !dup && len(m) < maxAdverts {
				m[seq] = now
			}
			s.mu.Unlock()
		}
	}
}

// Stop stops the sniffer and waits for it.
func (s *sniffer) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// adverts returns the adverts from src seen in [from, to).
func (s *sniffer) adverts(src string, from, to time.Time) []time.Time {
	a := netip.MustParseAddr(src)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, ad := range s.seen {
		if ad.src == a && !ad.t.Before(from) && ad.t.Before(to) {
			out = append(out, ad.t)
		}
	}
	return out
}

// wireView is the client's view of the probe on the wire.
type wireView struct {
	// silence is the longest time between two echo replies arriving
	// (or from the last reply to the end of the window): how long the
	// client heard nothing from the VIP, however the requests fared.
	silence time.Duration
	// late counts requests answered later than the threshold, lost those
	// not answered at all.
	late, lost int
}

// wire analyses the echo requests to the target sent in [from, to), and
// the replies to them.
func (s *sniffer) wire(from, to time.Time, lateAfter time.Duration) wireView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var w wireView
	var arrivals []time.Time
	for seq, t := range s.requests {
		if t.Before(from) || !t.Before(to) {
			continue
		}
		rt, ok := s.replies[seq]
		switch {
		case !ok:
			w.lost++
		case rt.Sub(t) > lateAfter:
			w.late++
		}
		if ok {
			arrivals = append(arrivals, rt)
		}
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	prev := from
	for _, a := range arrivals {
		w.silence = max(w.silence, a.Sub(prev))
		prev = a
	}
	w.silence = max(w.silence, to.Sub(prev))
	return w
}

// ---------------------------------------------------------------------
// Process accounting

// withDescendants returns roots and every live process below them.
func withDescendants(roots []int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			parent[pid] = st.ppid
		}
	}
	in := map[int]bool{}
	for _, r := range roots {
		in[r] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if in[pp] && !in[pid] {
				in[pid] = true
				changed = true
			}
		}
	}
	out := append([]int(nil), roots...)
	for pid := range in {
		if !contains(roots, pid) {
			out = append(out, pid)
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type procStat struct {
	comm         string
	ppid         int
	utime, stime uint64 // clock ticks
}

// readStat parses /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var st procStat
	st.comm = s[open+1 : end]
	st.ppid, _ = strconv.Atoi(f[1])
	st.utime, _ = strconv.ParseUint(f[11], 10, 64)
	st.stime, _ = strconv.ParseUint(f[12], 10, 64)
	return st, nil
}

// clkTck is USER_HZ, the unit of utime and stime (100 on every Linux ABI
// this runs on).
const clkTck = 100

// cpuSample is the CPU time of a set of processes at one moment.
type cpuSample struct {
	t      time.Time
	ticks  uint64        // utime+stime, in 1/clkTck s
	execNS time.Duration // sum of se.sum_exec_runtime over all threads (ns precision)
	// switches sums nr_switches over all threads: each is a wake-up
	// (or a preemption) of the daemon.
	switches int64
	schedOK  bool
	// perThread: "pid/tid" -> run time (ns), switches.
	perThread map[string][2]int64
}

// threadDeltas describes, thread by thread, the run time and switches
// between two samples, busiest first.
func threadDeltas(a, b cpuSample) string {
	type d struct {
		id     string
		ns, sw int64
	}
	var ds []d
	for id, v1 := range b.perThread {
		v0 := a.perThread[id]
		ds = append(ds, d{id, v1[0] - v0[0], v1[1] - v0[1]})
	}
	slices.SortFunc(ds, func(x, y d) int { return int(y.sw - x.sw) })
	var parts []string
	for _, x := range ds {
		parts = append(parts, fmt.Sprintf("%s: %d sw, %.2f ms", x.id, x.sw, float64(x.ns)/1e6))
	}
	return strings.Join(parts, "; ")
}

// sampleCPU reads the CPU time of pids: utime+stime from /proc/PID/stat
// (10 ms resolution) and, where the kernel exposes /proc/PID/task/TID/sched,
// the threads' exact run time.
func sampleCPU(pids []int) (cpuSample, error) {
	s := cpuSample{t: time.Now(), schedOK: true}
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			return s, err
		}
		s.ticks += st.utime + st.stime
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			s.schedOK = false
			continue
		}
		for _, t := range tasks {
			ns, sw, err := schedRuntime(filepath.Join("/proc", strconv.Itoa(pid), "task", t.Name(), "sched"))
			if err != nil {
				s.schedOK = false
				continue
			}
			s.execNS += ns
			s.switches += sw
			if s.perThread == nil {
				s.perThread = map[string][2]int64{}
			}
			s.perThread[strconv.Itoa(pid)+"/"+t.Name()] = [2]int64{int64(ns), sw}
		}
	}
	return s, nil
}

// schedRuntime reads se.sum_exec_runtime (milliseconds with six decimals)
// and nr_switches from a sched file.
func schedRuntime(path string) (time.Duration, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var (
		run      time.Duration
		switches int64
		found    bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "se.sum_exec_runtime":
			ms, frac, _ := strings.Cut(v, ".")
			msN, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				return 0, 0, err
			}
			frac = (frac + "000000")[:6]
			fracN, err := strconv.ParseInt(frac, 10, 64)
			if err != nil {
				return 0, 0, err
			}
			run = time.Duration(msN)*time.Millisecond + time.Duration(fracN)
			found = true
		case "nr_switches":
			switches, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("%s: no se.sum_exec_runtime", path)
	}
	return run, switches, nil
}

// memUsage is the memory of a set of processes.
type memUsage struct {
	rssKB, pssKB int64
	procs        int
}

// readMem sums VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup).
func readMem(pids []int) (memUsage, error) {
	var m memUsage
	for _, pid := range pids {
		rss, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		if err != nil {
			return m, err
		}
		m.rssKB += rss
		if pss, err := procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:"); err == nil {
			m.pssKB += pss
		}
		m.procs++
	}
	return m, nil
}

// procField returns the kB value of the line starting with key.
func procField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
