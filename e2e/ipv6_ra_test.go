package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/net/icmp"
	"golang.org/x/sys/unix"
)

// The IPv6 default router of the LAN: a link-local VIP, announced by radvd
// on the master only, from that address only (AdvRASrcAddress).
const (
	llVIP   = "fe80::1"
	raLife  = 60 // AdvDefaultLifetime, seconds
	raPrefx = "fd00:1::/64"
	farAddr = "fd00:99::1" // on every router's lo: reached through the default route
)

// radvdConf is radvd.conf(5) for the lab: RAs every 3-4 s, only ever from
// fe80::1. radvd needs no IgnoreIfMissing: it is only started on the
// master, which has fe80::1.
var radvdConf = fmt.Sprintf(`interface lan {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvDefaultLifetime %d;
	AdvRASrcAddress {
		%s;
	};
	prefix %s {
	};
};
`, raLife, llVIP, raPrefx)

// radvdInit is the init script carpd's service role runs (backend initd):
// start radvd on becoming master, SIGTERM it on becoming backup. carpd runs
// the stop only once fe80::1 is off the interface: radvd's final RA (router lifetime 0, RFC 4861
// 6.2.5) then has no fe80::1 to come from, and radvd sends none (its
// AdvRASrcAddress is not on the interface: it skips the interface, and the
// kernel refuses a non-local source). init.log records whether fe80::1 was
// still there at each stop.
const radvdInit = `#!/bin/sh
D=@DIR@
running() { [ -s $D/radvd.pid ] && kill -0 "$(cat $D/radvd.pid)" 2>/dev/null; }
case "$1" in
start)
	running && exit 0
	exec radvd -C $D/radvd.conf -p $D/radvd.pid -m logfile -l $D/radvd.log </dev/null >/dev/null 2>&1
	;;
stop)
	running || exit 0
	echo "stop with fe80::1 on lan: $(ip -6 addr show dev lan to @VIP@/128 | grep -c inet6)" >> $D/init.log
	kill -TERM "$(cat $D/radvd.pid)"
	i=0
	while [ $i -lt 100 ] && running; do sleep 0.05; i=$((i+1)); done
	;;
esac
`

// ra is one Router Advertisement the client received.
type ra struct {
	at       time.Time
	src      netip.Addr
	mac      string // the source link-layer address option
	lifetime int    // router lifetime, seconds
}

// raCounter reads every ICMPv6 RA that reaches the client, with a raw
// ICMPv6 socket opened in its namespace.
type raCounter struct {
	mu  sync.Mutex
	ras []ra
	c   *icmp.PacketConn
	wg  sync.WaitGroup
}

func (c *cluster) countRAs() *raCounter {
	c.t.Helper()
	rc := &raCounter{}
	err := c.client.Do(func() (err error) {
		rc.c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	})
	if err != nil {
		c.t.Fatal(err)
	}
	rc.wg.Add(1)
	go func() {
		defer rc.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, peer, err := rc.c.ReadFrom(buf)
			if err != nil {
				return
			}
			if r, ok := parseRA(buf[:n], peer); ok {
				rc.mu.Lock()
				rc.ras = append(rc.ras, r)
				rc.mu.Unlock()
			}
		}
	}()
	c.t.Cleanup(rc.stop)
	return rc
}

func (rc *raCounter) stop() {
	rc.c.Close()
	rc.wg.Wait()
}

// since returns the RAs received at or after t.
func (rc *raCounter) since(t time.Time) []ra {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []ra
	for _, r := range rc.ras {
		if !r.at.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// parseRA decodes an RA (RFC 4861 4.2): type 134, router lifetime at 6,
// options from 16; option 1 is the source link-layer address.
func parseRA(b []byte, peer net.Addr) (ra, bool) {
	if len(b) < 16 || b[0] != 134 {
		return ra{}, false
	}
	r := ra{at: time.Now(), lifetime: int(binary.BigEndian.Uint16(b[6:8]))}
	if ip, ok := peer.(*net.IPAddr); ok {
		r.src, _ = netip.AddrFromSlice(ip.IP)
	}
	for o := b[16:]; len(o) >= 8 && o[1] > 0 && int(o[1])*8 <= len(o); o = o[int(o[1])*8:] {
		if o[0] == 1 {
			r.mac = net.HardwareAddr(o[2:8]).String()
		}
	}
	return r, true
}

// routeSample is one look at the client's IPv6 default route.
type routeSample struct {
	at  time.Time
	out string // `ip -6 route show default`
}

// ok reports whether the default route is via fe80::1, and only that.
func (s routeSample) ok() bool {
	lines := strings.Split(strings.TrimSpace(s.out), "\n")
	f := strings.Fields(lines[0])
	return len(lines) == 1 && len(f) >= 5 && strings.Join(f[:5], " ") == "default via "+llVIP+" dev lan"
}

// sampleRoutes samples the client's default route every 50 ms (over an
// rtnetlink socket in its namespace, so a sample costs no process) for at
// most d, until stop is closed. A sample reads like `ip -6 route show
// default`: "default via fe80::1 dev lan".
func (c *cluster) sampleRoutes(d time.Duration, stop <-chan struct{}) <-chan []routeSample {
	c.t.Helper()
	var conn *rtnetlink.Conn
	lan := 0
	if err := c.client.Do(func() error {
		ifi, err := net.InterfaceByName("lan")
		if err != nil {
			return err
		}
		lan = ifi.Index
		conn, err = rtnetlink.Dial(nil)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	res := make(chan []routeSample, 1)
	go func() {
		defer conn.Close()
		var out []routeSample
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); {
			var b strings.Builder
			msgs, err := conn.Route.List()
			if err != nil {
				b.WriteString("error: " + err.Error())
			}
			for _, m := range msgs {
				if m.Family == unix.AF_INET6 && m.DstLength == 0 && m.Table == 254 /* RT_TABLE_MAIN */ {
					name := strconv.Itoa(int(m.Attributes.OutIface))
					if int(m.Attributes.OutIface) == lan {
						name = "lan"
					}
					fmt.Fprintf(&b, "default via %v dev %s\n", m.Attributes.Gateway, name)
				}
			}
			out = append(out, routeSample{time.Now(), b.String()})
			select {
			case <-stop:
				res <- out
				return
			case <-tick.C:
			}
		}
		res <- out
	}()
	return res
}

// gaps returns the stretches of samples without the route via fe80::1.
func gaps(samples []routeSample) []string {
	var out []string
	for i := 0; i < len(samples); i++ {
		if samples[i].ok() {
			continue
		}
		j := i
		for j+1 < len(samples) && !samples[j+1].ok() {
			j++
		}
		out = append(out, fmt.Sprintf("%d samples from %s (%q)", j-i+1, samples[i].at.Format("15:04:05.000"), samples[i].out))
		i = j
	}
	return out
}

// raRouter prepares r for the RA tests: IPv6 forwarding on, farAddr on lo,
// radvd.conf and the init script in r.dir. It returns the init script.
func (c *cluster) raRouter(r *router) string {
	c.t.Helper()
	if err := r.host.Sysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
		c.t.Fatal(err)
	}
	c.run(r.host, "ip", "addr", "add", farAddr+"/128", "dev", "lo")
	if err := os.WriteFile(filepath.Join(r.dir, "radvd.conf"), []byte(radvdConf), 0o644); err != nil {
		c.t.Fatal(err)
	}
	script := strings.NewReplacer("@DIR@", r.dir, "@VIP@", llVIP).Replace(radvdInit)
	path := filepath.Join(r.dir, "radvd.init")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { // radvd daemonizes: stop it by its pid file
		if pid := radvdPid(r); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if c.t.Failed() {
			for _, f := range []string{"radvd.log", "init.log"} {
				b, _ := os.ReadFile(filepath.Join(r.dir, f))
				c.t.Logf("--- %s %s:\n%s", r.name, f, b)
			}
		}
	})
	return path
}

// radvdPid returns the pid of r's radvd, or 0 when none runs.
func radvdPid(r *router) int {
	b, err := os.ReadFile(filepath.Join(r.dir, "radvd.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// raConf is the vhid with fe80::1 and radvd as a service role.
func raConf(initscript string, skew int) string {
	v := vhidConf{iface: "lan", vhid: 1, advbase: 1, advskew: skew, password: "secret", addrs: []string{llVIP + "/64"}}
	return confText(false, v) + "config service 'ra'\n\toption name 'radvd'\n\toption backend 'initd'\n" +
		"\toption initscript '" + initscript + "'\n"
}

// checkRAs fails on any RA in ras that is not from fe80::1 with a non-zero
// lifetime and from want's MAC, and on none at all.
func (c *cluster) checkRAs(what string, ras []ra, want *router) {
	c.t.Helper()
	st, err := want.host.LinkState("lan")
	if err != nil {
		c.t.Fatal(err)
	}
	if len(ras) == 0 {
		c.t.Errorf("%s: the client received no RA", what)
	}
	for _, r := range ras {
		if r.src != netip.MustParseAddr(llVIP).WithZone("lan") && r.src != netip.MustParseAddr(llVIP) || r.lifetime == 0 || r.mac != st.MAC {
			c.t.Errorf("%s: RA from %v (%s) lifetime %d at %s; want only %s from %s (%s) with lifetime %d",
				what, r.src, r.mac, r.lifetime, r.at.Format("15:04:05.000"), llVIP, want.name, st.MAC, raLife)
		}
	}
}

// TestIPv6DefaultRouterFollowsMaster: radvd on the master only (a service
// role), announcing fe80::1 (a link-local
// VIP). The client's only IPv6 default router is
// fe80::1 before and after a crash of the master, a graceful handover
// (carpd stopped) and a handover by maintenance mode, sampled every 50 ms
// without a gap; each radvd stop ran after fe80::1 was gone; only the master's RAs reach it, all
// from fe80::1, none with router lifetime 0; and it reaches an address
// behind the routers through that route after each move.
func TestIPv6DefaultRouterFollowsMaster(t *testing.T) {
	requireTool(t, "radvd")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	h1, h2 := c.raRouter(r1), c.raRouter(r2)
	ras := c.countRAs()

	c.start(r1, raConf(h1, 0))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, raConf(h2, 100))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "client's default route via fe80::1", func() bool {
		return routeSample{out: c.run(c.client, "ip", "-6", "route", "show", "default")}.ok()
	})
	if radvdPid(r1) == 0 || radvdPid(r2) != 0 {
		t.Fatalf("radvd: r1 pid %d, r2 pid %d; want it on the master r1 only", radvdPid(r1), radvdPid(r2))
	}
	c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", farAddr)
	start := time.Now()
	time.Sleep(4500 * time.Millisecond) // at least one periodic RA
	c.checkRAs("r1 master", ras.since(time.Time{}), r1)

	// Crash: power lost, radvd dies with carpd.
	stop := make(chan struct{})
	samples := c.sampleRoutes(60*time.Second, stop)
	if pid := radvdPid(r1); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.crash(r1)
	crashed := time.Now()
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	c.waitFor(3*time.Second, "radvd on r2", func() bool { return radvdPid(r2) != 0 })
	c.waitFor(6*time.Second, "an RA from r2", func() bool { return len(ras.since(crashed)) > 0 })
	c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", farAddr)
	c.checkRAs("r2 master after the crash", ras.since(crashed), r2)

	// r1 comes back as backup (no preempt): it removes the fe80::1 its
	// crash left behind, and runs no radvd.
	for _, lk := range r1.links {
		if err := lk.SetUp(true); err != nil {
			t.Fatal(err)
		}
	}
	c.start(r1, raConf(h1, 0))
	c.waitHearing(r1, "lan", 1, 3*time.Second)
	c.waitFor(3*time.Second, "r1 without fe80::1", func() bool { return !c.hasAddr(r1, "lan", llVIP+"/64") })
	if radvdPid(r1) != 0 {
		t.Fatal("radvd runs on the backup r1")
	}

	// Graceful handover: r2's carpd stops; it bows out, r1 takes over at
	// once, and r2's radvd stops only after fe80::1 left r2.
	handover := time.Now()
	c.stop(r2)
	c.waitState(r1, "lan", 1, "MASTER", 2*time.Second)
	c.waitFor(5*time.Second, "radvd on r2 stopped", func() bool { return radvdPid(r2) == 0 })
	if b, _ := os.ReadFile(filepath.Join(r2.dir, "init.log")); string(b) != "stop with fe80::1 on lan: 0\n" {
		t.Errorf("r2's radvd stops: %q, want one, after fe80::1 was removed", b)
	}
	c.waitFor(6*time.Second, "an RA from r1", func() bool {
		for _, r := range ras.since(handover) {
			if r.lifetime > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(4500 * time.Millisecond) // a periodic RA, and room for a late final RA
	c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", farAddr)

	// Maintenance on r1: it hands over to r2 (back as backup), leaves
	// MASTER on hearing r2 and removes fe80::1 at once (no bow-out
	// linger); its radvd stops after that.
	c.start(r2, raConf(h2, 100))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	maint := time.Now()
	c.run(r1.host, carpdBin, "maintenance", "-s", r1.sock(), "on")
	c.waitState(r2, "lan", 1, "MASTER", 3*time.Second)
	c.waitFor(5*time.Second, "radvd on r1 stopped", func() bool { return radvdPid(r1) == 0 })
	if b, _ := os.ReadFile(filepath.Join(r1.dir, "init.log")); string(b) != "stop with fe80::1 on lan: 0\n" {
		t.Errorf("r1's radvd stops: %q, want one, after fe80::1 was removed", b)
	}
	c.waitFor(6*time.Second, "an RA from r2", func() bool {
		for _, r := range ras.since(maint) {
			if r.lifetime > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(4500 * time.Millisecond)
	close(stop)
	got := <-samples
	c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", farAddr)
	var between []ra
	for _, r := range ras.since(handover) {
		if r.at.Before(maint) {
			between = append(between, r)
		}
	}
	c.checkRAs("r1 master after the handover", between, r1)
	c.checkRAs("r2 master after r1's maintenance", ras.since(maint), r2)
	t.Logf("%d route samples over %v (crash at +%v, handover at +%v, maintenance at +%v), %d RAs in all",
		len(got), time.Since(start).Round(time.Millisecond), crashed.Sub(start).Round(time.Millisecond),
		handover.Sub(start).Round(time.Millisecond), maint.Sub(start).Round(time.Millisecond), len(ras.since(time.Time{})))
	if len(got) < 100 {
		t.Fatalf("only %d route samples", len(got))
	}
	if g := gaps(got); len(g) > 0 {
		t.Fatalf("the client lost its default route via fe80::1: %v", g)
	}
}

// TestIPv6FinalRATrap is the control for the test above: radvd stopped on
// the master while fe80::1 is still there, which is what stopping a service
// before the VIPs are removed does (and what a hook racing carpd's removal
// may do). radvd's final RA (router lifetime 0, RFC 4861 6.2.5) then comes
// from fe80::1 and the client drops its only default router. The test
// asserts that this happens, so that the order the test above relies on is
// shown to matter.
func TestIPv6FinalRATrap(t *testing.T) {
	requireTool(t, "radvd")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	h1, h2 := c.raRouter(r1), c.raRouter(r2)
	ras := c.countRAs()
	c.start(r1, raConf(h1, 0))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, raConf(h2, 100))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "client's default route via fe80::1", func() bool {
		return routeSample{out: c.run(c.client, "ip", "-6", "route", "show", "default")}.ok()
	})
	stop := make(chan struct{})
	samples := c.sampleRoutes(20*time.Second, stop)
	time.Sleep(200 * time.Millisecond)
	pid := radvdPid(r1)
	if pid == 0 || !c.hasAddr(r1, "lan", llVIP+"/64") {
		t.Fatalf("test premise: radvd (pid %d) and fe80::1 on the master r1", pid)
	}
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor(5*time.Second, "a final RA (lifetime 0) from fe80::1", func() bool {
		for _, r := range ras.since(stopped) {
			if r.lifetime == 0 && r.src.WithZone("") == netip.MustParseAddr(llVIP) {
				return true
			}
		}
		return false
	})
	c.waitFor(2*time.Second, "the client to drop its default route", func() bool {
		return !routeSample{out: c.run(c.client, "ip", "-6", "route", "show", "default")}.ok()
	})
	close(stop)
	t.Logf("radvd stopped before fe80::1 was removed: final RA from fe80::1, route gaps: %v", gaps(<-samples))
}

// TestLinkLocalVIPOnTwoLANs: fe80::1 is the IPv6 gateway of two LANs, one
// vhid on each interface. Both vhids run side by side, and after a crash of
// the master the client reaches fe80::1 on each LAN at the new master, whose
// unsolicited NAs moved its neighbour entries.
func TestLinkLocalVIPOnTwoLANs(t *testing.T) {
	c := newCluster(t, 2, segment{name: "lan", prefix: "10.0.1", n: 1}, segment{name: "lan2", prefix: "10.0.2", n: 2})
	r1, r2 := c.routers[0], c.routers[1]
	conf := func(skew int) string {
		return confText(false,
			vhidConf{iface: "lan", vhid: 1, advbase: 1, advskew: skew, password: "one", addrs: []string{llVIP + "/64"}},
			vhidConf{iface: "lan2", vhid: 1, advbase: 1, advskew: skew, password: "two", addrs: []string{llVIP + "/64", "fd00:2::1/64"}})
	}
	c.start(r1, conf(0))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.waitState(r1, "lan2", 1, "MASTER", 6*time.Second)
	c.start(r2, conf(100))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitHearing(r2, "lan2", 1, 3*time.Second)
	for _, lan := range []string{"lan", "lan2"} {
		c.onlyHolder(r1, lan, llVIP+"/64")
		c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", llVIP+"%"+lan)
	}
	c.crash(r1)
	c.waitState(r2, "lan", 1, "MASTER", 6*time.Second)
	c.waitState(r2, "lan2", 1, "MASTER", 6*time.Second)
	for _, lan := range []string{"lan", "lan2"} {
		st, err := r2.host.LinkState(lan)
		if err != nil {
			t.Fatal(err)
		}
		c.waitFor(2*time.Second, "client's entry for fe80::1 on "+lan+" at r2", func() bool {
			mac, _, _ := c.client.Neigh(lan, llVIP)
			return mac == st.MAC
		})
		c.run(c.client, "ping", "-6", "-c", "1", "-W", "2", llVIP+"%"+lan)
		if !c.hasAddr(r2, lan, llVIP+"/64") {
			t.Fatalf("r2 has no fe80::1 on %s", lan)
		}
	}
	for _, v := range c.status(r2).VHIDs {
		if v.Counters.BadHMAC != 0 {
			t.Errorf("%s vhid %d: %d adverts failed the HMAC", v.Interface, v.VHID, v.Counters.BadHMAC)
		}
	}
}
