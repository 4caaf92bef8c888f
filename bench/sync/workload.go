//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/kernel"
)

// --- real TCP connections through the master ---

// echoServer answers every connection on server:5000: it echoes what it
// reads once, then waits for the client's FIN and closes, so every flow
// goes through the whole TCP life (SYN, ESTABLISHED, FIN_WAIT, CLOSE_WAIT,
// LAST_ACK, TIME_WAIT) and, 2 s later, its DESTROY.
type echoServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

func (b *bench) startServer() error {
	s := &echoServer{}
	if err := b.server.Do(func() (err error) {
		s.ln, err = net.Listen("tcp4", net.JoinHostPort(serverAddr, strconv.Itoa(serverPort)))
		return err
	}); err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 256)
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c) // until the client's FIN
			}()
		}
	}()
	b.srv = s
	return nil
}

func (s *echoServer) close() {
	if s == nil {
		return
	}
	s.ln.Close()
	s.wg.Wait()
}

// connections opens n short connections from the client to the server,
// one every gap: connect, write 32 bytes, read the echo, close. It returns
// the number that failed and the first error.
func (b *bench) connections(ctx context.Context, n int, gap time.Duration) (failed int, first error) {
	var wg sync.WaitGroup
	var nfail atomic.Int64
	var once sync.Once
	msg := []byte("carpd sync benchmark, flow ....\n")
	next := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(gap)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.client.Do(func() error {
				d := net.Dialer{Timeout: 5 * time.Second}
				c, err := d.Dial("tcp4", net.JoinHostPort(serverAddr, strconv.Itoa(serverPort)))
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(msg); err != nil {
					return err
				}
				buf := make([]byte, len(msg))
				_, err = io.ReadFull(c, buf)
				return err
			})
			if err != nil {
				nfail.Add(1)
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return int(nfail.Load()), first
}

// --- synthetic flows injected into the master's kernel ---

// Synthetic flows are masqueraded LAN→WAN TCP connections, ESTABLISHED and
// ASSURED: LAN host 100.64.0.0+i (a CGNAT-style range, one host per flow),
// to server 198.51.100.(1+i%250):443, source-NATed to the WAN VIP with the
// port preserved (what masquerade does), so every reply tuple is distinct.
// Different uses take different LAN ranges (base).
var (
	bulkBase    = netip.MustParseAddr("100.64.0.0")
	latencyBase = netip.MustParseAddr("100.120.0.0")
	vip         = netip.MustParseAddr(wanVIP)
)

func synthFlows(base netip.Addr, n int) []flow.Flow {
	fs := make([]flow.Flow, n)
	b4 := base.As4()
	b := uint32(b4[0])<<24 | uint32(b4[1])<<16 | uint32(b4[2])<<8 | uint32(b4[3])
	for i := range fs {
		a := b + uint32(i)
		src := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		dst := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i%250)})
		sport := uint16(1024 + i/250)
		fs[i] = flow.Flow{
			Orig:     flow.Tuple{Src: src, Dst: dst, Proto: flow.ProtoTCP, SrcPort: sport, DstPort: 443},
			Reply:    flow.Tuple{Src: dst, Dst: vip, Proto: flow.ProtoTCP, SrcPort: 443, DstPort: sport},
			Status:   flow.StatusSeenReply | flow.StatusAssured,
			Timeout:  3600,
			TCPState: flow.TCPEstablished,
		}
	}
	return fs
}

// inject creates flows in batches of batch (kernel.Conntrack.Apply: one
// sendmsg of up to 256 creates each) as fast as it can.
func inject(ctx context.Context, c *kernel.Conntrack, fs []flow.Flow, batch int) (time.Duration, int, error) {
	start := time.Now()
	nerr := 0
	var first error
	for i := 0; i < len(fs) && ctx.Err() == nil; i += batch {
		for _, err := range c.Apply(ctx, fs[i:min(i+batch, len(fs))]) {
			if err != nil {
				nerr++
				if first == nil {
					first = err
				}
			}
		}
	}
	return time.Since(start), nerr, first
}

// --- process statistics ---

// procStats is what /proc says about a process.
type procStats struct {
	cpu     time.Duration // utime+stime of every thread, plus reaped children's
	rss     int64         // VmRSS, bytes
	hwm     int64         // VmHWM (peak RSS), bytes
	threads int
}

// clkTck is USER_HZ, 100 on every Linux architecture carpd targets.
const clkTck = 100

func readProc(pid int) (procStats, error) {
	var ps procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ps, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return ps, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
	var ticks int64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		ticks += v
	}
	ps.cpu = time.Duration(ticks) * time.Second / clkTck
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			ps.rss = n << 10
		case "VmHWM":
			ps.hwm = n << 10
		case "Threads":
			ps.threads = int(n)
		}
	}
	return ps, nil
}

// children lists the pids of pid's child processes (conntrackd forks for
// some jobs).
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// readTree sums a process and its live children.
func readTree(pid int) (procStats, int, error) {
	ps, err := readProc(pid)
	if err != nil {
		return ps, 0, err
	}
	n := 1
	for _, c := range children(pid) {
		cs, err := readProc(c)
		if err != nil {
			continue
		}
		n++
		ps.cpu += cs.cpu
		ps.rss += cs.rss
		ps.hwm += cs.hwm
		ps.threads += cs.threads
	}
	return ps, n, nil
}
