//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// An impl is one sync daemon under test, started on both routers.
type impl interface {
	name() string
	// start writes the configuration for phase and starts the daemon on
	// r, returning once it answers on its control socket.
	start(ctx context.Context, b *bench, r *router, phase string, shaped bool) error
	// paired waits until master and backup have a working session.
	paired(ctx context.Context, b *bench) error
	// summary is a one-line view of the daemon's own counters on r.
	summary(ctx context.Context, b *bench, r *router) string
	// anomalies lists what the daemon's own counters on r say went wrong
	// (drops, losses, retransmissions, errors), for the report.
	anomalies(ctx context.Context, b *bench, r *router) []string
	// settings describes the configuration for the report.
	settings(b *bench) string
	version() string
}

// stopDaemon asks the daemon on r to stop (SIGTERM), then kills it.
func stopDaemon(r *router) {
	if r.proc == nil {
		return
	}
	if err := r.proc.Signal(syscall.SIGTERM); err == nil {
		if r.proc.Wait(5*time.Second) != nil {
			logf("%s: daemon did not stop within 5 s of SIGTERM; killing it", r.name)
			r.proc.Kill()
			_ = r.proc.Wait(5 * time.Second)
		}
	}
	r.proc = nil
}

// waitFor polls cond every step until it holds, d passes or ctx ends.
func waitFor(ctx context.Context, d, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(step):
		}
	}
}

func exited(p *lab.Proc) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- carpd ---

type carpd struct{ bin string }

func (c *carpd) name() string { return "carpd" }

func (c *carpd) sock(r *router) string { return filepath.Join(r.dir, "carpd.sock") }

func (c *carpd) conf(b *bench, r *router, shaped bool) string {
	s := fmt.Sprintf("config carpd 'global'\n\toption log_level '%s'\n\toption control_socket '%s'\n\n", b.o.carpdLog, c.sock(r))
	s += fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '%s'\n\toption key '%s'\n\toption window '%s'\n",
		r.peer, b.key, b.o.window)
	if shaped {
		s += fmt.Sprintf("\toption bandwidth '%s'\n", b.o.bulkRate)
	}
	return s
}

func (c *carpd) start(ctx context.Context, b *bench, r *router, phase string, shaped bool) error {
	conf := filepath.Join(r.dir, "carpd.conf")
	if err := os.WriteFile(conf, []byte(c.conf(b, r, shaped)), 0o644); err != nil {
		return err
	}
	_ = os.Remove(c.sock(r))
	p, err := r.h.StartWith(lab.StartOptions{LogFile: filepath.Join(b.o.logDir, fmt.Sprintf("carpd-%s-%s.log", phase, r.name))},
		c.bin, "-c", conf)
	if err != nil {
		return err
	}
	r.proc = p
	ok := waitFor(ctx, 5*time.Second, 20*time.Millisecond, func() bool {
		_, err := daemon.Call(c.sock(r), daemon.Request{Method: "status"})
		return err == nil || exited(p)
	})
	if !ok || exited(p) {
		return fmt.Errorf("carpd on %s did not come up:\n%s", r.name, tail(p.Output(), 20))
	}
	return nil
}

func (c *carpd) status(r *router) (daemon.Status, error) {
	var st daemon.Status
	raw, err := daemon.Call(c.sock(r), daemon.Request{Method: "status"})
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(raw, &st)
	return st, err
}

func (c *carpd) paired(ctx context.Context, b *bench) error {
	var last string
	ok := waitFor(ctx, 20*time.Second, 50*time.Millisecond, func() bool {
		for _, r := range []*router{b.r1, b.r2} {
			st, err := c.status(r)
			if err != nil {
				last = err.Error()
				return false
			}
			if !st.Sync.Established || !st.Sync.Bulk.Synced {
				last = fmt.Sprintf("%s: established=%v synced=%v", r.name, st.Sync.Established, st.Sync.Bulk.Synced)
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("carpd pair not established and synced within 20 s (%s)", last)
	}
	return nil
}

func (c *carpd) summary(_ context.Context, _ *bench, r *router) string {
	st, err := c.status(r)
	if err != nil {
		return "status: " + err.Error()
	}
	s, k := st.Sync, st.Sync.Counters
	return fmt.Sprintf("local=%d synced=%d pending=%d from_peer=%d sent=%dB/%dfr/%drec recv=%dB/%dfr/%drec resent=%d never_sent=%d overruns=%d apply_err=%d drops(q=%d unk=%d inv=%d) rtt=%s bulk=%+v",
		s.FlowsLocal, s.FlowsSynced, s.FlowsPending, s.FlowsPeer, k.BytesSent, k.FramesSent, k.FlowsSent,
		k.BytesReceived, k.FramesReceived, k.FlowsReceived, k.Retransmits, k.BornAndDead, k.Overruns, k.ApplyErrors,
		k.DropQueue, k.DropUnknownID, k.DropInvalid, s.RTT, s.Bulk)
}

func (c *carpd) anomalies(_ context.Context, b *bench, r *router) []string {
	st, err := c.status(r)
	if err != nil {
		return []string{"status: " + err.Error()}
	}
	k := st.Sync.Counters
	var out []string
	add := func(n uint64, what string) {
		if n > 0 {
			out = append(out, fmt.Sprintf("%s %d", what, n))
		}
	}
	add(k.DropQueue, "drop_queue_full (frames dropped by its receive queue)")
	add(k.Overruns, "kernel_overruns (conntrack events lost, table re-dumped)")
	add(k.Retransmits, "flows_resent")
	add(k.ApplyErrors, "apply_errors")
	add(k.DropUnknownID, "drop_unknown_id")
	add(k.DropInvalid, "drop_invalid_flow")
	add(k.SendErrors, "send_errors")
	add(k.DropAuth+k.DropReplay+k.DropEpoch+k.DropMalformed+k.DropSource, "other drops")
	if r == b.r2 && st.Sync.FlowsLocal > 0 {
		out = append(out, fmt.Sprintf("flows_local %d on the backup (it replicates flows back to the master)", st.Sync.FlowsLocal))
	}
	return out
}

func (c *carpd) settings(b *bench) string {
	return fmt.Sprintf("`config sync`: `option interface 'sync'`, `option peer` (the other router), a random 64-hex `key`, "+
		"`option window '%s'`; no `bandwidth` cap except in the bulk test (`option bandwidth '%s'`, the shaped link's rate); "+
		"every other option at its default (port 7112, refresh 60s, all protocols, `min_state any`); no vhid sections "+
		"(the VIPs are static on r1, so both daemons see the same router); log_level %s",
		b.o.window, b.o.bulkRate, b.o.carpdLog)
}

func (c *carpd) version() string {
	out, err := exec.Command(c.bin, "version").CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// --- conntrackd ---

type conntrackd struct{ bin string }

func (c *conntrackd) name() string { return "conntrackd" }

func (c *conntrackd) conf(r *router) string { return filepath.Join(r.dir, "ctd.conf") }
func (c *conntrackd) sock(r *router) string { return filepath.Join(r.dir, "ctd.sock") }

// ctdConf is FTFW over unicast UDP on the sync link, the Debian example
// (examples/sync/ftfw/conntrackd.conf) adapted: DisableExternalCache (hot
// standby: the backup injects at once, as carpd does), StartupResync (a
// starting node asks for the table, as carpd does), TCP, UDP and ICMP (what
// carpd syncs by default), the routers' own addresses ignored, and a
// HashLimit that holds the events phase's table. Socket, lock and log per
// namespace.
const ctdConf = `Sync {
	Mode FTFW {
		DisableExternalCache yes
		StartupResync yes
	}
	UDP {
		IPv4_address %[1]s
		IPv4_Destination_Address %[2]s
		Port 3780
		Interface sync
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
}
General {
	Systemd no
	HashSize 32768
	HashLimit 262144
	LogFile %[3]s
	Syslog off
	LockFile %[4]s
	UNIX {
		Path %[5]s
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter From Userspace {
		Protocol Accept {
			TCP
			UDP
			ICMP
		}
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address 10.0.1.1
			IPv4_address 10.0.2.1
			IPv4_address 10.0.1.2
			IPv4_address 10.0.1.3
			IPv4_address 10.0.2.2
			IPv4_address 10.0.2.3
			IPv4_address 10.0.3.2
			IPv4_address 10.0.3.3
		}
	}
}
`

func (c *conntrackd) start(ctx context.Context, b *bench, r *router, phase string, _ bool) error {
	lock := filepath.Join(r.dir, "ctd.lock")
	logFile := filepath.Join(b.o.logDir, fmt.Sprintf("conntrackd-%s-%s.logfile", phase, r.name))
	conf := fmt.Sprintf(ctdConf, r.addr, r.peer, logFile, lock, c.sock(r))
	if err := os.WriteFile(c.conf(r), []byte(conf), 0o644); err != nil {
		return err
	}
	// A lock or socket left by a killed instance would stop the next one.
	_ = os.Remove(lock)
	_ = os.Remove(c.sock(r))
	// No -d: conntrackd stays in the foreground ("console mode"), so the
	// lab owns its pid and kills it on Close whatever happens.
	p, err := r.h.StartWith(lab.StartOptions{LogFile: filepath.Join(b.o.logDir, fmt.Sprintf("conntrackd-%s-%s.log", phase, r.name))},
		c.bin, "-C", c.conf(r))
	if err != nil {
		return err
	}
	r.proc = p
	ok := waitFor(ctx, 5*time.Second, 20*time.Millisecond, func() bool {
		if exited(p) {
			return true
		}
		_, err := os.Stat(c.sock(r))
		return err == nil
	})
	if !ok || exited(p) {
		return fmt.Errorf("conntrackd on %s did not come up:\n%s", r.name, tail(p.Output(), 20))
	}
	return nil
}

// cli runs `conntrackd -C conf args...` in r's namespace.
func (c *conntrackd) cli(ctx context.Context, r *router, args ...string) (string, error) {
	return r.h.Run(ctx, append([]string{c.bin, "-C", c.conf(r)}, args...)...)
}

// paired: FTFW has no session state to ask for; both sides answer each
// other's messages at least once a second (ACK or ALIVE), so the pair works
// once the master has both sent and received sync datagrams after start.
func (c *conntrackd) paired(ctx context.Context, b *bench) error {
	c0, err := readCounters(ctx, b.r1)
	if err != nil {
		return err
	}
	ok := waitFor(ctx, 10*time.Second, 100*time.Millisecond, func() bool {
		c1, err := readCounters(ctx, b.r1)
		return err == nil && c1.inP > c0.inP+1 && c1.outP > c0.outP+1
	})
	if !ok {
		return errors.New("conntrackd pair: no traffic both ways on the sync link within 10 s")
	}
	return nil
}

var ctdStatRE = regexp.MustCompile(`(?m)^\s*(.+?):\s+(\d+)`)

// ctdNumbers picks counters out of `conntrackd -s ...` output: for each
// label, the number that follows it.
func ctdNumbers(out string, labels ...string) []string {
	flat := strings.Join(strings.Fields(out), " ")
	var vals []string
	for _, l := range labels {
		i := strings.Index(flat, l)
		if i < 0 {
			vals = append(vals, "?")
			continue
		}
		rest := strings.TrimLeft(flat[i+len(l):], ": ")
		f := strings.Fields(rest)
		if len(f) == 0 {
			vals = append(vals, "?")
			continue
		}
		v := f[0]
		if strings.HasSuffix(v, "/") && len(f) > 1 { // "OK/failed: 150/ 0"
			v += f[1]
		}
		vals = append(vals, v)
	}
	return vals
}

func (c *conntrackd) summary(ctx context.Context, _ *bench, r *router) string {
	net, err := c.cli(ctx, r, "-s", "network")
	if err != nil {
		return "-s network: " + err.Error()
	}
	cache, err := c.cli(ctx, r, "-s", "cache")
	if err != nil {
		return "-s cache: " + err.Error()
	}
	// "UDP traffic (active device=sync): N Bytes sent N Bytes recv N Pckts sent N Pckts recv N Error send N Error recv"
	flat := strings.Join(strings.Fields(net), " ")
	udp := ""
	if i := strings.Index(flat, "UDP traffic"); i >= 0 {
		udp = flat[i:]
	}
	lost := ctdNumbers(net, "Packets lost", "Packets before")
	ca := ctdNumbers(cache, "active objects", "creation OK/failed", "update OK/failed", "deletion created/failed")
	inj := ctdNumbers(cache[max(strings.Index(cache, "external inject"), 0):], "connections created", "failed", "connections updated")
	return fmt.Sprintf("%s; seq: lost %s, before %s; internal cache: %s objects, created %s, updated %s, deleted %s; external inject: created %s (failed %s), updated %s",
		udp, lost[0], lost[1], ca[0], ca[1], ca[2], ca[3], inj[0], inj[1], inj[2])
}

// internalFlows is the size of conntrackd's internal cache.
func (c *conntrackd) internalFlows(ctx context.Context, r *router) (int, error) {
	out, err := c.cli(ctx, r, "-s")
	if err != nil {
		return 0, err
	}
	// "cache internal:\n current active connections: N"
	i := strings.Index(out, "cache internal")
	if i < 0 {
		return 0, fmt.Errorf("no internal cache in: %s", out)
	}
	m := ctdStatRE.FindStringSubmatch(out[i+len("cache internal:"):])
	if m == nil {
		return 0, fmt.Errorf("unparsable: %s", out)
	}
	return strconv.Atoi(m[2])
}

func (c *conntrackd) anomalies(ctx context.Context, _ *bench, r *router) []string {
	net, err := c.cli(ctx, r, "-s", "network")
	if err != nil {
		return []string{"-s network: " + err.Error()}
	}
	cache, _ := c.cli(ctx, r, "-s", "cache")
	var out []string
	vals := ctdNumbers(net, "Packets lost", "Packets before", "Error send", "Error recv", "Malformed messages")
	for i, what := range []string{"sequence numbers lost (Packets lost)", "Packets before", "send errors", "receive errors", "malformed messages"} {
		if n, err := strconv.Atoi(strings.TrimSuffix(vals[i], "/0")); err == nil && n > 0 {
			out = append(out, fmt.Sprintf("%s %d", what, n))
		}
	}
	if i := strings.Index(cache, "external inject"); i >= 0 {
		inj := ctdNumbers(cache[i:], "failed")
		if n, err := strconv.Atoi(inj[0]); err == nil && n > 0 {
			out = append(out, fmt.Sprintf("failed injections %d", n))
		}
	}
	return out
}

func (c *conntrackd) settings(b *bench) string {
	return "FTFW over unicast UDP (port 3780) on the sync interface, `Checksum on`, socket buffers 1249280 (Debian example); " +
		"`DisableExternalCache yes` (hot standby: the backup injects into its kernel at once, like carpd; " +
		"the default external cache would keep the flows in userspace until `conntrackd -c`), `StartupResync yes`, " +
		"`Filter From Userspace`: Protocol Accept TCP UDP ICMP, Address Ignore 127.0.0.1 and every router and VIP address; " +
		"HashSize 32768, HashLimit 262144, NetlinkBufferSize 2097152, NetlinkBufferSizeMaxGrowth 8388608; " +
		"NetlinkEventsReliable off, default RR real-time scheduler (priority 99), ACKWindowSize 300, ResendQueueSize 131072 (defaults); " +
		"own UNIX socket, lock file and log file per namespace; run in the foreground (`conntrackd -C FILE`, no `-d`)"
}

func (c *conntrackd) version() string {
	out, err := exec.Command("dpkg-query", "-W", "conntrackd").CombinedOutput()
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(out)), " ")
}
