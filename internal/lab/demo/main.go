// Command demo shows carpd's main job in network namespaces: two routers
// share the virtual IP 10.0.1.1, a client pings it every 10 ms, the master
// crashes, the backup takes over, the master returns and preempts. It prints
// a timeline with the client-visible outage of each step.
//
//	go build -o bin/carpd . && sudo go run ./lab/demo -carpd bin/carpd
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// The embedded default configuration: one vhid, an IPv4 and an IPv6 VIP.
const confTmpl = `config carpd 'global'
	option preempt '1'
	option control_socket '%s'

config vhid 'lan'
	option interface 'lan'
	option vhid '1'
	option advbase '1'
	option advskew '%d'
	option password 'demo-secret'
	list address '10.0.1.1/24'
	list address 'fd00:1::1/64'
`

type node struct {
	name, sock, conf string
	host             *lab.Host
	link             *lab.Link
	proc             *lab.Proc
	skew             int
	last             string
}

var t0 = time.Now()

func say(format string, a ...any) {
	fmt.Printf("[%7.3fs] %s\n", time.Since(t0).Seconds(), fmt.Sprintf(format, a...))
}

func main() {
	// carpd accepts its sockets, state file and hooks in temporary
	// directories only when the environment names them (config.TrustedDirsEnv).
	os.Setenv("CARPD_TRUSTED_DIRS", os.TempDir())
	bin := flag.String("carpd", "bin/carpd", "carpd `binary` to run")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	if err := lab.Available(); err != nil {
		return fmt.Errorf("needs root and network namespaces: %w", err)
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (build it with `make build`)", err)
	}
	dir, err := os.MkdirTemp("", "carpd-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := lab.New("cdemo")
	if err != nil {
		return err
	}
	defer l.Close()

	say("building the lab: a LAN bridge, a client (10.0.1.100) and routers r1 (10.0.1.2), r2 (10.0.1.3)")
	sw, err := l.Switch("lan")
	if err != nil {
		return err
	}
	client, err := l.Host("client")
	if err != nil {
		return err
	}
	if _, err := l.Attach(client, sw, "lan", "10.0.1.100/24", "fd00:1::100/64"); err != nil {
		return err
	}
	nodes := []*node{{name: "r1", skew: 0}, {name: "r2", skew: 100}}
	for i, n := range nodes {
		if n.host, err = l.Host(n.name); err != nil {
			return err
		}
		if n.link, err = l.Attach(n.host, sw, "lan", fmt.Sprintf("10.0.1.%d/24", i+2), fmt.Sprintf("fd00:1::%d/64", i+2)); err != nil {
			return err
		}
		n.sock = filepath.Join(dir, n.name+".sock")
		n.conf = filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(n.conf, fmt.Appendf(nil, confTmpl, n.sock, n.skew), 0o644); err != nil {
			return err
		}
	}
	r1, r2 := nodes[0], nodes[1]

	start := func(n *node) error {
		n.proc, err = n.host.StartWith(lab.StartOptions{LogFile: filepath.Join(dir, n.name+".log")}, bin, "-c", n.conf)
		if err != nil {
			return err
		}
		say("%s: carpd started (advbase 1, advskew %d, preempt on)", n.name, n.skew)
		return nil
	}
	// watch polls both routers and prints each state change until cond
	// holds or d passes.
	report := func() {
		for _, n := range nodes {
			s, reason := state(n)
			if s != n.last && s != "" {
				if reason != "" {
					say("%s: %s (%s)", n.name, s, reason)
				} else {
					say("%s: %s", n.name, s)
				}
				n.last = s
			}
		}
	}
	watch := func(d time.Duration, what string, cond func() bool) error {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			report()
			if cond() {
				// A router may have changed between report and cond:
				// print that change before what follows from it.
				report()
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return fmt.Errorf("timed out waiting for %s", what)
	}
	is := func(n *node, s string) func() bool { return func() bool { st, _ := state(n); return st == s } }

	if err := start(r1); err != nil {
		return err
	}
	if err := watch(6*time.Second, "r1 MASTER", is(r1, "MASTER")); err != nil {
		return err
	}
	if err := start(r2); err != nil {
		return err
	}
	if err := watch(4*time.Second, "r2 hearing r1", func() bool { return heard(r2) }); err != nil {
		return err
	}

	probe, err := client.StartProbe(netip.MustParseAddr("10.0.1.1"), 10*time.Millisecond, 2*time.Minute)
	if err != nil {
		return err
	}
	say("client: pinging the VIP 10.0.1.1 every 10 ms")
	time.Sleep(2 * time.Second)

	say(">>> crash: r1's carpd is killed (SIGKILL) and its link goes down")
	crash := time.Now()
	r1.proc.Kill()
	if err := r1.link.SetUp(false); err != nil {
		return err
	}
	r1.last = "(crashed)"
	say("r1: crashed")
	if err := watch(8*time.Second, "r2 MASTER", is(r2, "MASTER")); err != nil {
		return err
	}
	say("r2 took over %.3f s after the crash (master-down = 3 x (1 + 100/256) s = 4.17 s after r1's last advert)", time.Since(crash).Seconds())
	time.Sleep(1500 * time.Millisecond)
	res1 := probe.Snapshot()

	say(">>> r1 comes back: link up, carpd restarted")
	if err := r1.link.SetUp(true); err != nil {
		return err
	}
	if err := start(r1); err != nil {
		return err
	}
	if err := watch(8*time.Second, "r1 to preempt", func() bool { return is(r1, "MASTER")() && is(r2, "BACKUP")() }); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)

	say(">>> planned maintenance: r1 stops gracefully (SIGTERM): it bows out")
	_ = r1.proc.Signal(15)
	if err := watch(3*time.Second, "r2 MASTER", is(r2, "MASTER")); err != nil {
		return err
	}
	_ = r1.proc.Wait(3 * time.Second)
	r1.last = "(stopped)"
	time.Sleep(1500 * time.Millisecond)
	res := probe.Stop()

	fmt.Println()
	fmt.Println("client-visible outages (ICMP echo every 10 ms):")
	fmt.Printf("  %-34s %s\n", "crash of the master:", outage(res1, crash, crash.Add(10*time.Second)))
	fmt.Printf("  %-34s %s\n", "all three moves together:", fmt.Sprintf("%d of %d probes lost", res.Lost, res.Sent))
	for _, o := range res.Outages {
		fmt.Printf("    outage at %6.3fs: %v (%d probes lost)\n", o.Start.Sub(t0).Seconds(), o.Duration.Round(time.Millisecond), o.Lost)
	}
	fmt.Println()
	fmt.Println("What happened: r2 waited three advert intervals after r1 went silent, added the")
	fmt.Println("VIPs and sent gratuitous ARP and unsolicited neighbour advertisements; the client")
	fmt.Println("followed at once. r1 came back with a shorter interval and preempted; on SIGTERM it")
	fmt.Println("sent the CARP bow-out advert (advbase 255) so r2 took over without waiting.")
	fmt.Printf("Logs of this run were in %s (removed on exit).\n", dir)
	return nil
}

func state(n *node) (state, reason string) {
	raw, err := daemon.Call(n.sock, daemon.Request{Method: "status"})
	if err != nil {
		return "", ""
	}
	var st daemon.Status
	if json.Unmarshal(raw, &st) != nil || len(st.VHIDs) == 0 {
		return "", ""
	}
	if k := len(st.Transitions); k > 0 {
		reason = st.Transitions[k-1].Reason
	}
	return st.VHIDs[0].State, reason
}

func heard(n *node) bool {
	raw, err := daemon.Call(n.sock, daemon.Request{Method: "status"})
	if err != nil {
		return false
	}
	var st daemon.Status
	return json.Unmarshal(raw, &st) == nil && len(st.VHIDs) > 0 && st.VHIDs[0].Counters.AdvertsReceived > 0
}

// outage describes the outages of r that started between from and to.
func outage(r lab.ProbeResult, from, to time.Time) string {
	var parts []string
	for _, o := range r.Outages {
		if o.Start.Before(from.Add(-20*time.Millisecond)) || o.Start.After(to) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%v (%d probes lost)", o.Duration.Round(time.Millisecond), o.Lost))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
