//go:build linux

// Command follow is the benchmark of issue #12, "the router follows the
// master" (`make bench-follow`). Its lease half: bytes on the sync link per
// DHCP lease event and for a bulk of 1 000 leases, with two carpd routers
// in a lab (package lab), lease sync on, measured on the real sync socket.
//
// The lab: r1 (master) and r2 (backup) on a LAN (vhid 1, 10.20.0.1/20, so
// that 1 000 leases fit its network) and a dedicated sync link. The
// benchmark writes r1's lease file as dnsmasq does (the whole file, renamed
// into place) and waits until r2's carpd has written the lease into r2's
// file. Bytes are IP-layer bytes of the sync traffic (UDP port 7112, both
// directions: LEASE frames, their acknowledgements, keepalives) counted by
// nftables on r1's sync interface; the idle rate (keepalives) measured
// first is subtracted. Phases:
//
//   - single: one lease added at a time (each in a frame of its own), the
//     bytes counted over the whole series and 6 s after it, so that the
//     acknowledgements are counted wherever they ride;
//   - burst: 200 leases added in one rewrite of the file (they share frames);
//   - bulk: r2's carpd is stopped, r1's file gets 1 000 leases, r2's carpd
//     starts; bytes until r2's file holds all of them (the session
//     handshake included).
//
// Later phases (the config-sync timing) add a function and a row each.
//
//	go build -o /tmp/carpd-bench . && CARPD_BIN=/tmp/carpd-bench go run ./bench/follow -out bench/follow-results.md
//
// It needs root, iproute2 and nft. All traffic stays inside the lab's
// namespaces; the lab and both daemons are torn down at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// row is one line of the results table.
type row struct{ what, value, note string }

type bench struct {
	l     *lab.Lab
	bin   string
	dir   string
	r     [2]*lab.Host
	procs [2]*lab.Proc
	files [2]string
	key   string
	idle  float64 // bytes/s on the sync link with nothing to sync
	exp   int64   // the leases' expiry: the same in every rewrite
}

func main() {
	out := flag.String("out", "", "write the Markdown table here (default: stdout)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench-follow:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	bin := os.Getenv("CARPD_BIN")
	if bin == "" {
		return errors.New("CARPD_BIN must name the carpd binary")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "bench-follow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	l, err := lab.New("bfo")
	if err != nil {
		return err
	}
	defer l.Close()
	b := &bench{l: l, bin: bin, dir: dir}
	if err := b.setup(ctx); err != nil {
		return err
	}
	var rows []row
	for _, phase := range []func(context.Context) ([]row, error){b.leaseRows} {
		r, err := phase(ctx)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	var sb strings.Builder
	sb.WriteString("| Measure | Value | Note |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", r.what, r.value, r.note)
	}
	if out == "" {
		fmt.Print(sb.String())
		return nil
	}
	return os.WriteFile(out, []byte(sb.String()), 0o644)
}

func (b *bench) setup(ctx context.Context) error {
	lan, err := b.l.Switch("lan")
	if err != nil {
		return err
	}
	syn, err := b.l.Switch("sync")
	if err != nil {
		return err
	}
	var k [32]byte
	_, _ = rand.Read(k[:])
	b.key = hex.EncodeToString(k[:])
	for i := range b.r {
		h, err := b.l.Host(fmt.Sprintf("r%d", i+1))
		if err != nil {
			return err
		}
		b.r[i] = h
		if _, err := b.l.Attach(h, lan, "lan", fmt.Sprintf("10.20.0.%d/20", i+2)); err != nil {
			return err
		}
		if _, err := b.l.Attach(h, syn, "sync", fmt.Sprintf("10.0.3.%d/24", i+2)); err != nil {
			return err
		}
		b.files[i] = filepath.Join(b.dir, fmt.Sprintf("r%d.leases", i+1))
		if err := os.WriteFile(b.files[i], nil, 0o644); err != nil {
			return err
		}
	}
	if _, err := b.r[0].Run(ctx, "nft", "add table inet bf\n"+
		"add chain inet bf o { type filter hook output priority 0; }\nadd rule inet bf o udp dport 7112 counter\n"+
		"add chain inet bf i { type filter hook input priority 0; }\nadd rule inet bf i udp sport 7112 counter\n"); err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	for i := range b.r {
		if err := b.start(i); err != nil {
			return err
		}
	}
	return b.waitFor(20*time.Second, "the sync session", func() bool {
		return b.status(0).Sync.Established && b.status(1).Sync.Established && b.status(0).VHIDs[0].State == "MASTER"
	})
}

func (b *bench) start(i int) error {
	sock := filepath.Join(b.dir, fmt.Sprintf("r%d.sock", i+1))
	conf := fmt.Sprintf("config carpd 'global'\n\toption control_socket '%s'\n\n"+
		"config vhid 'lan'\n\toption interface 'lan'\n\toption vhid '1'\n\toption advbase '1'\n\toption advskew '%d'\n\toption password 'l'\n\tlist address '10.20.0.1/20'\n\n"+
		"config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n\toption window '50ms'\n\toption lease_sync '1'\n\toption leasefile '%s'\n",
		sock, []int{0, 100}[i], 3-i, b.key, b.files[i])
	path := filepath.Join(b.dir, fmt.Sprintf("r%d.conf", i+1))
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := b.r[i].StartWith(lab.StartOptions{LogFile: filepath.Join(b.dir, fmt.Sprintf("r%d.log", i+1))}, b.bin, "-c", path)
	if err != nil {
		return err
	}
	b.procs[i] = p
	return b.waitFor(5*time.Second, "the control socket", func() bool {
		_, err := daemon.Call(sock, daemon.Request{Method: "status"})
		return err == nil
	})
}

func (b *bench) status(i int) daemon.Status {
	var st daemon.Status
	raw, err := daemon.Call(filepath.Join(b.dir, fmt.Sprintf("r%d.sock", i+1)), daemon.Request{Method: "status"})
	if err == nil {
		_ = json.Unmarshal(raw, &st)
	}
	if st.VHIDs == nil {
		st.VHIDs = []daemon.VHIDStatus{{}}
	}
	return st
}

func (b *bench) waitFor(d time.Duration, what string, cond func() bool) error {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("timed out after %v waiting for %s", d, what)
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes (\d+)`)

// linkBytes is what went over r1's sync socket so far (both directions).
func (b *bench) linkBytes(ctx context.Context) (int64, error) {
	out, err := b.r[0].Run(ctx, "nft", "list", "table", "inet", "bf")
	if err != nil {
		return 0, err
	}
	var n int64
	for _, m := range counterRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	return n, nil
}

// writeLeases writes r1's lease file as dnsmasq would: n leases.
func (b *bench) writeLeases(n int) error {
	if b.exp == 0 {
		b.exp = time.Now().Add(time.Hour).Unix()
	}
	exp := b.exp
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "%d 02:00:00:00:%02x:%02x 10.20.%d.%d host-%d 01:02:00:00:00:%02x:%02x\n",
			exp, i>>8, i&255, 1+i/250, 1+i%250, i, i>>8, i&255)
	}
	tmp := b.files[0] + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, b.files[0])
}

// onBackup reports whether r2's file holds n leases.
func (b *bench) onBackup(n int) bool {
	raw, _ := os.ReadFile(b.files[1])
	return strings.Count(string(raw), "\n") == n
}

// measure runs fn and returns the bytes on the sync link until done,
// idle rate subtracted.
func (b *bench) measure(ctx context.Context, what string, fn func() error, done func() bool) (float64, error) {
	before, err := b.linkBytes(ctx)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := fn(); err != nil {
		return 0, err
	}
	if err := b.waitFor(60*time.Second, what, done); err != nil {
		return 0, err
	}
	time.Sleep(300 * time.Millisecond) // the last acknowledgements
	after, err := b.linkBytes(ctx)
	if err != nil {
		return 0, err
	}
	return float64(after-before) - b.idle*time.Since(t0).Seconds(), nil
}

func (b *bench) leaseRows(ctx context.Context) ([]row, error) {
	// Idle: keepalives only.
	x0, err := b.linkBytes(ctx)
	if err != nil {
		return nil, err
	}
	// Four keepalive intervals: the rate does not depend on where the
	// keepalives fall in the window.
	const idleFor = 20 * time.Second
	time.Sleep(idleFor)
	x1, err := b.linkBytes(ctx)
	if err != nil {
		return nil, err
	}
	b.idle = float64(x1-x0) / idleFor.Seconds()
	fmt.Fprintf(os.Stderr, "idle: %.1f B/s\n", b.idle)

	// One lease at a time, each once r2 has the one before, 200 ms
	// apart; bytes over the whole series and settleFor after it, so that
	// acknowledgements held back (they ride on frames that go anyway, up
	// to a keepalive interval later) are counted wherever they go.
	const single = 50
	const settleFor = 6 * time.Second
	total, err := b.measure(ctx, "single leases on r2", func() error {
		for i := 1; i <= single; i++ {
			if err := b.writeLeases(i); err != nil {
				return err
			}
			if err := b.waitFor(60*time.Second, "a lease on r2", func() bool { return b.onBackup(i) }); err != nil {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(settleFor)
		return nil
	}, func() bool { return true })
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "single: %.1f B/event\n", total/single)

	const burst = 200
	nb, err := b.measure(ctx, "a burst on r2", func() error { return b.writeLeases(single + burst) }, func() bool { return b.onBackup(single + burst) })
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "burst: %.1f B/event\n", nb/burst)

	// Bulk: r2 restarts with an empty file while r1 holds 1 000 leases.
	const bulk = 1000
	if err := b.procs[1].Signal(syscall.SIGTERM); err != nil {
		return nil, err
	}
	if err := b.procs[1].Wait(10 * time.Second); err != nil {
		return nil, err
	}
	if err := b.writeLeases(bulk); err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.files[1], nil, 0o644); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // r1 has read its file
	nk, err := b.measure(ctx, "the bulk on r2", func() error { return b.start(1) }, func() bool { return b.onBackup(bulk) })
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bulk: %.0f B\n", nk)
	return []row{
		{"lease event, one at a time", fmt.Sprintf("%.1f B", total/single), fmt.Sprintf("mean of %d, 200 ms apart, each written once r2 has the one before: a frame of its own each; bytes over the whole series and %v after it (held-back acknowledgements included), idle rate subtracted; target ≤ 64 B", single, settleFor)},
		{"lease event, in a burst", fmt.Sprintf("%.1f B", nb/burst), fmt.Sprintf("%d leases in one rewrite of the file", burst)},
		{"bulk of 1 000 leases", fmt.Sprintf("%.0f B", nk), "r2's carpd restarts; session handshake included; target ≤ 64 KB"},
	}, nil
}
