// Command carpd is a CARP daemon for Linux and OpenWrt routers: virtual IP
// failover that interoperates with OpenBSD, FreeBSD and ucarp.
//
//	carpd [run] -c FILE        run in the foreground (SIGTERM stops, SIGHUP reloads)
//	carpd check-config -c FILE validate a configuration
//	carpd status [--json] [-s SOCKET]
//	carpd demote [-s SOCKET] [-g GROUP] [--vhid N] [--interface IF] N
//	carpd demote [-s SOCKET] [-g GROUP] --source NAME --set N [--ttl SECONDS]
//	carpd maintenance [-s SOCKET] on|off [--wait[=SECONDS]]
//	carpd reload [-s SOCKET]
//	carpd config-sync [-s SOCKET] [--dry-run] [--force]
//	carpd metrics [-s SOCKET]
//	carpd version
//
// Size rules: the stripped mips_24kc binary must stay within 5,000,000 bytes
// (docs/size-budget.md). So the daemon links no os/exec (openwrt's
// runCombined uses os.StartProcess), calls no resolving net function
// (net.Dial, Listen, ListenPacket, Dialer, ListenConfig, Resolve*Addr,
// Lookup*: they link Go's DNS client; DialUnix, ListenUnix, ListenIP and
// sockets made by hand do not), and sorts with sort.Slice, not the
// slices.Sort family (one pdqsort per element type). make lint checks these
// in the source, make test the binary (make size-check).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/metrics"
	"github.com/carpd/carpd/internal/openwrt"
	"github.com/carpd/carpd/internal/track"
	"github.com/carpd/carpd/ubus/json"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  carpd [run] [-c FILE] [-s SOCKET]    run in the foreground; SIGTERM stops, SIGHUP reloads
  carpd check-config [-c FILE]         validate a configuration (errors as FILE:LINE: message)
  carpd status [--json] [-s SOCKET]    show the state of every vhid
  carpd demote [-s SOCKET] [-g GROUP] [--vhid N] [--interface IF] N
                                       change the demotion by N (negative undoes; the
                                       counter stays in 0..255): of the group carp (or
                                       GROUP); --vhid and --interface narrow it to that
                                       vhid and/or the vhids there
  carpd demote [-s SOCKET] [-g GROUP] --source NAME --set N [--ttl SECONDS]
                                       set the group's source NAME to N (0 removes it),
                                       expiring after SECONDS when given
  carpd maintenance [-s SOCKET] on|off [--wait[=SECONDS]]
                                       demote every vhid so the peers take over; kept across
                                       restarts; --wait returns once the peer is master of every
                                       vhid and has every synced flow (default 60 s), or fails
  carpd reload [-s SOCKET]             re-read the configuration
  carpd resync [-s SOCKET]             ask the sync peer for its whole table
  carpd config-sync [-s SOCKET] [--dry-run] [--force]
                                       configuration sync (docs/config-sync.md): --dry-run
                                       (the default) shows what would change as a diff;
                                       --force takes the primary's version over a local edit
                                       (secondary) or sends every object again, forced (primary)
  carpd metrics [-s SOCKET]            the status as Prometheus metrics (docs/metrics.md)
  carpd version
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheck(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "metrics":
		return cmdMetrics(args, stdout, stderr)
	case "demote":
		return cmdDemote(args, stdout, stderr)
	case "reload":
		return cmdReload(args, stdout, stderr)
	case "maintenance":
		return cmdMaintenance(args, stdout, stderr)
	case "resync":
		return cmdSimple("resync", args, stderr)
	case "config-sync":
		return cmdConfigSync(args, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "carpd %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "carpd: unknown command %q\n%s", cmd, usage)
	return 2
}

func newFlags(name string, stderr io.Writer) *flagSet {
	return newFlagSet("carpd "+name, stderr)
}

// load reads and validates the config, printing every problem as
// FILE:LINE: message. Warnings do not fail.
func load(path string, stderr io.Writer) (*config.Config, error) {
	cfg, warnings, errs := openwrt.LoadConfig(path)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return cfg, nil
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", stderr)
	path := fs.String("c", config.DefaultPath, "configuration `file`")
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := load(*path, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d vhid(s))\n", *path, len(cfg.VHIDs))
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("c", config.DefaultPath, "configuration `file`")
	sock := fs.String("s", "", "control `socket` (overrides option control_socket)")
	if fs.Parse(args) != nil {
		return 2
	}
	cfg, err := load(*path, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := new(logx.LevelVar)
	log := logx.New(logx.NewTextHandler(stderr, &logx.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	d := daemon.New(cfg, daemon.Options{
		Log: log, Level: level, ControlSocket: *sock, Version: version,
		Load: func() (*config.Config, error) {
			var buf strings.Builder
			c, err := load(*path, &buf)
			if buf.Len() > 0 {
				log.Warn(strings.TrimSpace(buf.String()))
			}
			return c, err
		},
	})
	defer startCPUProfile()()
	setGCPercent()
	raisePriority(log)
	if err := d.Run(ctx, reload); err != nil {
		log.Error("carpd failed", "err", err)
		return 1
	}
	return 0
}

// daemonGOGC is the daemon's GC target unless the environment sets GOGC:
// the heap may grow to 1.5 times what is live, not Go's default 2. The
// flow tables are nearly all of the heap with many flows and hold no
// pointers the collector scans, so a cycle costs little; on a router, RAM
// is what runs out. With 100,000 synced flows: 28/31 MB RSS (master /
// backup) instead of 33/37 MB, the same CPU per event (BENCHMARKS.md).
const daemonGOGC = 50

func setGCPercent() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGOGC)
	}
}

// raisePriority gives the daemon carp.DaemonNice however it was started
// (docs/performance.md), so that its advert timers hold when every core is
// busy; where that is not permitted it runs on at the niceness it has.
func raisePriority(log *logx.Logger) {
	if was, err := carp.RaisePriority(carp.DaemonNice); err != nil {
		log.Info("scheduling priority not raised", "nice", was, "err", err)
	}
}

func socketFlag(fs *flagSet) *string {
	return fs.String("s", config.DefaultControlSocket, "control `socket` of the daemon")
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	sock := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args) != nil {
		return 2
	}
	raw, err := daemon.Call(*sock, daemon.Request{Method: "status"})
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	if *asJSON {
		var v any
		_ = json.Unmarshal(raw, &v)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return 0
	}
	var st daemon.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	printStatus(stdout, &st)
	return 0
}

// cmdMetrics prints the status in the Prometheus text format, for
// node_exporter's textfile collector and the prometheus-node-exporter-lua
// collector (docs/metrics.md). When carpd does not answer it still prints
// carpd_up 0 (and exits 1), so that a file rewritten from its output says
// "down" instead of keeping the last figures.
func cmdMetrics(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("metrics", stderr)
	sock := socketFlag(fs)
	if fs.Parse(args) != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, "usage: carpd metrics [-s SOCKET]\n")
		return 2
	}
	raw, err := daemon.Call(*sock, daemon.Request{Method: "status"})
	if err == nil {
		err = metrics.Write(stdout, raw)
	} else {
		_ = metrics.WriteDown(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	return 0
}

func printStatus(w io.Writer, st *daemon.Status) {
	maint := ""
	if st.Demotion.Maintenance {
		maint = ", MAINTENANCE MODE"
	}
	for _, g := range st.Demotion.Groups {
		if g.Demotion > 0 && g.Name != config.DefaultGroup {
			maint += fmt.Sprintf(", group %s %d", g.Name, g.Demotion)
		}
	}
	fmt.Fprintf(w, "carpd %s, pid %d, up %s, demotion manual %d link %d sync %d%s\n\n", st.Version, st.PID,
		time.Since(st.Started).Round(time.Second), st.Demotion.Manual, st.Demotion.Link, st.Demotion.Sync, maint)
	var tw table
	fmt.Fprintln(&tw, "INTERFACE\tVHID\tSTATE\tSINCE\tADVBASE/SKEW\tDEMOTE\tMASTER\tSENT\tRECV\tDROPPED (csum/hmac/ttl/ver/own)")
	for _, v := range st.VHIDs {
		c := v.Counters
		master := v.Master
		if master == "" {
			master = "-"
		}
		fmt.Fprintf(&tw, "%s\t%d\t%s\t%s\t%d/%d\t%d\t%s\t%d\t%d\t%d/%d/%d/%d/%d\n",
			v.Interface, v.VHID, v.State, v.Since.Local().Format("2006-01-02 15:04:05"),
			v.AdvBase, v.AdvSkew, v.Demotion, master, c.AdvertsSent, c.AdvertsReceived,
			c.BadChecksum, c.BadHMAC, c.BadTTL, c.BadVersion, c.OwnPacket)
	}
	tw.flush(w)
	for _, v := range st.VHIDs {
		fmt.Fprintf(w, "  %s vhid %d: %s\n", v.Interface, v.VHID, strings.Join(v.Addresses, " "))
		if b := v.Balance; b != nil {
			fmt.Fprintf(w, "    balanced section %s: %s, cluster MAC %s, nodes %v, owned %d (mask %#b)%s\n",
				b.Section, b.Mode, b.MAC, b.Nodes, b.Owned, b.Mask, errSuffix(b.Error))
		}
		printDemotion(w, &v)
		if c := v.Counters; c.StaleSequence+c.TimingMismatch+c.Downgrade > 0 {
			fmt.Fprintf(w, "    replayed adverts refused: stale sequence %d, timing rewritten %d, downgraded %d\n",
				c.StaleSequence, c.TimingMismatch, c.Downgrade)
		}
	}
	for _, i := range st.Interfaces {
		if i.Error != "" || !i.LinkUp {
			fmt.Fprintf(w, "  interface %s: link up %v %s\n", i.Name, i.LinkUp, i.Error)
		}
	}
	for _, v := range st.VHIDs {
		if v.Error != "" {
			fmt.Fprintf(w, "  %s vhid %d not running: %s\n", v.Interface, v.VHID, v.Error)
		}
	}
	if st.StateFileError != "" {
		fmt.Fprintf(w, "  warning: maintenance mode will not survive a restart: %s\n", st.StateFileError)
	}
	if st.TransitionsDropped > 0 {
		fmt.Fprintf(w, "  warning: %d transitions were not recorded (nor passed to hooks and ubus)\n", st.TransitionsDropped)
	}
	printTrackers(w, st.Trackers)
	printServices(w, st.Services)
	printSplitAndWait(w, st)
	printSync(w, &st.Sync)
}

// printDemotion says why a vhid is demoted: its demotion and the peer's,
// its groups, and each source with its value, reason and since.
func printDemotion(w io.Writer, v *daemon.VHIDStatus) {
	if v.Held != "" {
		fmt.Fprintf(w, "    takeover held: %s\n", v.Held)
	}
	if v.Demotion == 0 && v.PeerDemotion == nil && len(v.Groups) <= 1 && len(v.DemotionSources) == 0 {
		return
	}
	fmt.Fprintf(w, "    demotion %d", v.Demotion)
	if v.PeerDemotion != nil {
		fmt.Fprintf(w, ", peer advertises %d", *v.PeerDemotion)
		if v.PeerAdvSkew != nil {
			fmt.Fprintf(w, " (advskew %d)", *v.PeerAdvSkew)
		}
	}
	if len(v.Groups) > 0 {
		fmt.Fprintf(w, "; groups %s", strings.Join(v.Groups, " "))
	}
	fmt.Fprintln(w)
	for _, s := range v.DemotionSources {
		g := s.Group
		if g == "" {
			g = "this vhid"
		}
		fmt.Fprintf(w, "      %s (%s) +%d: %s, since %s", s.Name, g, s.Value, s.Reason, s.Since.Local().Format("15:04:05"))
		if !s.Expires.IsZero() {
			fmt.Fprintf(w, ", expires %s", s.Expires.Local().Format("15:04:05"))
		}
		fmt.Fprintln(w)
	}
}

func printTrackers(w io.Writer, ts []track.Status) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntrackers:")
	for _, t := range ts {
		fmt.Fprintf(w, "  %s (%s, group %s, weight %d): %s", t.Name, t.Type, t.Group, t.Weight, strings.ToUpper(t.State))
		if t.Value > 0 {
			fmt.Fprintf(w, " +%d", t.Value)
		}
		if t.Suspect {
			fmt.Fprint(w, " (suspect: last round bad)")
		}
		fmt.Fprintf(w, ": %s, since %s; rounds %d good %d bad %d\n", t.Reason, t.Since.Local().Format("15:04:05"), t.Rounds, t.Good, t.Bad)
		for _, a := range t.Targets {
			fmt.Fprintf(w, "    %s: sent %d, received %d, rtt %.1f ms\n", a.Address, a.Sent, a.Received, a.RTTms)
		}
		if t.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", t.Error)
		}
	}
}

// table collects lines of tab-separated cells and writes them as
// left-aligned columns two spaces apart, the last cell of a line
// unpadded: what text/tabwriter (padding 2, padchar ' ') makes of the
// status table, without its 9 KB of MIPS code.
type table struct{ b []byte }

func (t *table) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	return len(p), nil
}

func (t *table) flush(w io.Writer) {
	lines := strings.Split(strings.TrimSuffix(string(t.b), "\n"), "\n")
	var widths []int
	for _, l := range lines {
		cells := strings.Split(l, "\t")
		for i, c := range cells[:len(cells)-1] {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var out []byte
	for _, l := range lines {
		cells := strings.Split(l, "\t")
		for i, c := range cells {
			out = append(out, c...)
			for n := utf8.RuneCountInString(c); i < len(cells)-1 && n < widths[i]+2; n++ {
				out = append(out, ' ')
			}
		}
		out = append(out, '\n')
	}
	_, _ = w.Write(out)
}

func printSync(w io.Writer, s *daemon.SyncStatus) {
	if !s.Enabled {
		return
	}
	fmt.Fprintf(w, "\nstate sync on %s to %s", s.Interface, s.Peer)
	if s.PeerName != "" {
		fmt.Fprintf(w, " (%s)", s.PeerName)
	}
	up := "DOWN"
	if s.PeerUp {
		up = "up"
	}
	fmt.Fprintf(w, ": peer %s", up)
	if s.HandshakeFailing {
		fmt.Fprint(w, ", handshake refused (sync demotion held)")
	}
	if s.RTT != "" {
		fmt.Fprintf(w, ", rtt %s", s.RTT)
	}
	if !s.LastAck.IsZero() {
		fmt.Fprintf(w, ", last ack %s ago", time.Since(s.LastAck).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
		return
	}
	bulk := "waiting for the peer's table"
	switch {
	case s.Bulk.TimedOut:
		bulk = "gave up waiting for the peer's table"
	case s.Bulk.Synced:
		bulk = "complete"
	}
	fmt.Fprintf(w, "  flows: %d local (%d acknowledged, %d pending), %d from the peer; initial transfer %s\n",
		s.FlowsLocal, s.FlowsSynced, s.FlowsPending, s.FlowsPeer, bulk)
	c := s.Counters
	fmt.Fprintf(w, "  sent %d B in %d frames, received %d B in %d frames, %d flows resent\n",
		c.BytesSent, c.FramesSent, c.BytesReceived, c.FramesReceived, c.Retransmits)
	fmt.Fprintf(w, "  dropped: auth %d, replay %d, epoch %d, malformed %d, wrong source %d, queue %d, invalid flow %d, oversize %d, peer table full %d; apply errors %d\n",
		c.DropAuth, c.DropReplay, c.DropEpoch, c.DropMalformed, c.DropSource, c.DropQueue, c.DropInvalid, c.DropOversize, c.DropPeerFull, c.ApplyErrors)
	fmt.Fprintf(w, "  refused from the peer: local %d, protocol %d, address %d, zone %d, mark %d, state %d, clash %d; timeouts clamped %d\n",
		c.RefusedLocal, c.RefusedProtocol, c.RefusedAddress, c.RefusedZone, c.RefusedMark, c.RefusedState, c.RefusedClash, c.Clamped)
}

func cmdDemote(args []string, stdout, stderr io.Writer) int {
	sock, req, err := parseDemoteArgs(args, stderr)
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "carpd demote: %v\n", err)
		}
		fmt.Fprint(stderr, demoteUsage)
		return 2
	}
	if _, err := daemon.Call(sock, req); err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	return 0
}

const demoteUsage = `usage: carpd demote [-s SOCKET] [-g GROUP] [--vhid N] [--interface IF] N
       carpd demote [-s SOCKET] [-g GROUP] --source NAME --set N [--ttl SECONDS]
`

var errUsage = errors.New("usage")

// parseDemoteArgs parses the arguments of carpd demote: relative (a
// number, for a group or vhids) or absolute (--source and --set, in a
// group, with an optional ttl). The daemon checks the names and ranges
// again; these checks only give a clearer message at once.
func parseDemoteArgs(args []string, stderr io.Writer) (string, daemon.Request, error) {
	fs := newFlags("demote", stderr)
	sock := socketFlag(fs)
	vhid := fs.Uint("vhid", 0, "only this `vhid` (default: all)")
	iface := fs.String("interface", "", "only the vhids on this `interface` (with --vhid: that vhid there)")
	var group string
	fs.StringVar(&group, "g", "", "the demotion `group` (default carp)")
	fs.StringVar(&group, "group", "", "the demotion `group` (default carp)")
	source := fs.String("source", "", "set the named `source` of the group absolutely (with --set)")
	set := fs.String("set", "", "the source's new `value`, 0 to 255 (0 removes it)")
	ttl := fs.Int("ttl", 0, "the source expires after this many `seconds` (0: never, at most 86400)")
	flags, pos := splitArgs(args)
	if fs.Parse(flags) != nil || fs.NArg() != 0 || *vhid > 255 {
		return "", daemon.Request{}, errUsage
	}
	req := daemon.Request{Method: "demote", VHID: uint8(*vhid), Interface: *iface, Group: group}
	if *source != "" || *set != "" {
		n, err := strconv.Atoi(*set)
		switch {
		case *source == "" || *set == "":
			return "", req, errors.New("--source and --set go together")
		case len(pos) != 0 || *vhid != 0 || *iface != "":
			return "", req, errors.New("--source/--set set a group's source: no relative N, --vhid or --interface")
		case err != nil || n < 0 || n > daemon.MaxDemotion:
			return "", req, fmt.Errorf("--set %q: want 0 to %d", *set, daemon.MaxDemotion)
		case *ttl < 0 || *ttl > 86400:
			return "", req, fmt.Errorf("--ttl %d: want 0 to 86400 seconds", *ttl)
		}
		req.Source, req.Set, req.TTL = *source, &n, *ttl
		return *sock, req, nil
	}
	if *ttl != 0 {
		return "", req, errors.New("--ttl goes with --source and --set")
	}
	if len(pos) != 1 {
		return "", req, errUsage
	}
	n, err := parseDemotion(pos[0])
	if err != nil {
		return "", req, err
	}
	req.By = n
	return *sock, req, nil
}

// splitArgs separates the flags of carpd demote (with their values) from
// the positional arguments, wherever they appear, so that a negative
// number ("-3") is an argument and never taken for a flag, and a flag's
// value is never taken for an argument: "--vhid 5 -3" is vhid 5 and -3.
// After "--" everything is positional. Anything else is left to fs.Parse
// (which refuses what it does not know).
func splitArgs(args []string) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--":
			return flags, append(pos, args[i+1:]...)
		case isValueFlag(a) && i+1 < len(args):
			flags = append(flags, a, args[i+1])
			i++
		case isNumber(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
		}
	}
	return flags, pos
}

// isValueFlag: the flags of carpd demote that take a value (flag accepts
// one or two dashes).
func isValueFlag(a string) bool {
	if !strings.HasPrefix(a, "-") {
		return false
	}
	switch strings.TrimPrefix(a[1:], "-") {
	case "s", "vhid", "interface", "g", "group", "source", "set", "ttl":
		return true
	}
	return false
}

func isNumber(s string) bool {
	_, err := parseDemotion(s)
	return err == nil
}

// parseDemotion parses the relative demotion of `carpd demote`. Numbers
// beyond what int holds are clamped (strconv.Atoi returns the bound with
// ErrRange), not refused: the daemon saturates the counter in [0, 255]
// anyway, so "a lot" and "everything" mean the same.
func parseDemotion(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	return cmdSimple("reload", args, stderr)
}

// cmdSimple sends a method without arguments.
func cmdSimple(method string, args []string, stderr io.Writer) int {
	fs := newFlags(method, stderr)
	sock := socketFlag(fs)
	if fs.Parse(args) != nil {
		return 2
	}
	if _, err := daemon.Call(*sock, daemon.Request{Method: method}); err != nil {
		fmt.Fprintf(stderr, "carpd: %s failed: %v\n", method, err)
		return 1
	}
	return 0
}

func cmdMaintenance(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("maintenance", stderr)
	sock := socketFlag(fs)
	var wait waitFlag
	fs.Var(&wait, "0", "wait", "wait up to `SECONDS` (default 60) for the handover to be confirmed")
	// Flags may come before or after on|off.
	if fs.Parse(args) != nil {
		return 2
	}
	mode, extra := fs.Arg(0), false
	if rest := fs.Args(); len(rest) > 1 {
		if fs.Parse(rest[1:]) != nil {
			return 2
		}
		extra = fs.NArg() > 0
	}
	var on bool
	switch mode {
	case "on", "1", "enable":
		on = true
	case "off", "0", "disable":
	default:
		fmt.Fprint(stderr, "usage: carpd maintenance [-s SOCKET] on|off [--wait[=SECONDS]]\n")
		return 2
	}
	if extra {
		fmt.Fprint(stderr, "usage: carpd maintenance [-s SOCKET] on|off [--wait[=SECONDS]]\n")
		return 2
	}
	raw, err := daemon.Call(*sock, daemon.Request{Method: "maintenance", Enable: &on, Wait: int(wait)})
	if err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	// The mode is in force even when it could not be saved: say so.
	var res daemon.MaintenanceWaitResult
	if json.Unmarshal(raw, &res) == nil {
		if res.Warning != "" {
			fmt.Fprintf(stderr, "carpd: warning: %s\n", res.Warning)
		}
		if res.Wait != nil && res.Wait.State == daemon.MaintDone {
			fmt.Fprintln(stdout, "handover confirmed")
		}
	}
	return 0
}

// waitFlag is --wait[=SECONDS]: alone it means the default wait.
type waitFlag int

func (w *waitFlag) String() string   { return strconv.Itoa(int(*w)) }
func (w *waitFlag) IsBoolFlag() bool { return true }
func (w *waitFlag) Set(s string) error {
	switch s {
	case "true":
		*w = daemon.DefaultMaintenanceWait
		return nil
	case "false":
		*w = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > daemon.MaxMaintenanceWait {
		return fmt.Errorf("%q: want seconds, 0 to %d", s, daemon.MaxMaintenanceWait)
	}
	*w = waitFlag(n)
	return nil
}

func cmdConfigSync(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config-sync", stderr)
	sock := socketFlag(fs)
	dry := fs.Bool("dry-run", false, "show what would change, change nothing")
	force := fs.Bool("force", false, "secondary: take the primary's version over a local edit; primary: send everything again, forced")
	if fs.Parse(args) != nil || fs.NArg() > 0 {
		return 2
	}
	req := daemon.Request{Method: "config_sync", DryRun: *dry || !*force, Force: *force && !*dry}
	raw, err := daemon.Call(*sock, req)
	if err != nil {
		fmt.Fprintf(stderr, "carpd: config-sync failed: %v\n", err)
		return 1
	}
	var res daemon.ConfigSyncResult
	if err := json.Unmarshal(raw, &res); err != nil {
		fmt.Fprintf(stderr, "carpd: %v\n", err)
		return 1
	}
	if req.DryRun && res.Diff == "" {
		res.Diff = "nothing would change\n"
	}
	fmt.Fprint(stdout, res.Diff)
	if len(res.Conflicts) > 0 {
		fmt.Fprintln(stdout, "conflict (edited here since the last sync):", strings.Join(res.Conflicts, " "))
	}
	if len(res.Written) > 0 {
		fmt.Fprintln(stdout, "written:", strings.Join(res.Written, " "))
	}
	if len(res.Sent) > 0 {
		fmt.Fprintln(stdout, "sent again, forced:", strings.Join(res.Sent, " "))
	}
	return 0
}

// errSuffix is ", error: e" or nothing.
func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ", error: " + e
}
