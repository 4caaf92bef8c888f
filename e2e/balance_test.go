//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/balance"
	"github.com/carpd/carpd/internal/lab"
)

// The balancing lab: a client segment (10.10.0.0/24, the client with 64
// source addresses .100-.163) and a server segment (10.20.0.0/24, the
// server .100), joined by three routers r1-r3 (.2-.4 on both). Each side
// has a cluster address, .1, that resolves to the cluster MAC of that
// side (balancing ip: 01:00:5e:00:01:<first vhid>, vhids 1.. on the client
// side and 11.. on the server side), so every router receives every frame
// and the datapath decides which one forwards it. The server's replies
// fold to the same node (the hash is symmetric), so they return through
// the router that forwarded the request.
const (
	balServer  = "10.20.0.100"
	balServer6 = "fd20::100"
	balFlows   = 64
)

type balRouter struct {
	name   string
	host   *lab.Host
	dps    []*balance.Datapath
	cliMAC string // the cluster MAC on the client side
	srvMAC string // and on the server side
	lanDev string // the client-side device: lan, or the bridge br-lan over it
}

// open installs the datapath on both of the router's sides for n nodes.
func (r *balRouter) open(t *testing.T, n int) {
	t.Helper()
	r.close(t)
	err := r.host.Do(func() error {
		for _, side := range []struct {
			ifname string
			vhid   uint8
			mac    string
		}{{r.lanDev, 1, r.cliMAC}, {"wan", 11, r.srvMAC}} {
			ifi, err := net.InterfaceByName(side.ifname)
			if err != nil {
				return err
			}
			mac, _ := net.ParseMAC(side.mac)
			d, err := balance.Open(ifi.Index, side.vhid, mac, n)
			if err != nil {
				return err
			}
			r.dps = append(r.dps, d)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
}

// setMask gives the router the nodes of mask on both sides and returns how
// long that took.
func (r *balRouter) setMask(t *testing.T, mask uint32) time.Duration {
	t.Helper()
	start := time.Now()
	for _, d := range r.dps {
		if err := d.SetMask(mask); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
	}
	return time.Since(start)
}

func (r *balRouter) close(t *testing.T) {
	t.Helper()
	for _, d := range r.dps {
		if err := d.Close(); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
	}
	r.dps = nil
}

// conntrackSources returns the original source of every UDP entry of
// family ("ipv4", "ipv6") to port in the router's conntrack table, and
// whether it saw a reply.
func (r *balRouter) conntrackSources(t *testing.T, family string, port int) map[string]bool {
	t.Helper()
	out, err := r.host.Run(context.Background(), "conntrack", "-L", "-f", family, "-p", "udp", "--dport", fmt.Sprint(port))
	if err != nil && !strings.Contains(err.Error(), "0 flow entries") {
		t.Fatalf("%s: %v", r.name, err)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(line, "src=")
		if !ok {
			continue
		}
		src, _, _ := strings.Cut(rest, " ")
		got[src] = !strings.Contains(line, "[UNREPLIED]")
	}
	return got
}

// balOwner is the test's own reading of OpenBSD's rule, written apart from
// package balance: every byte of both addresses XORed into byte i mod 4 of
// a 4-byte fold (the same as XORing 32-bit words), read as one big-endian
// number, modulo the node count.
func balOwner(src, dst netip.Addr, n int) int {
	s, d := src.AsSlice(), dst.AsSlice()
	var fold [4]byte
	for i := range s {
		fold[i%4] ^= s[i] ^ d[i]
	}
	v := uint64(fold[0])<<24 | uint64(fold[1])<<16 | uint64(fold[2])<<8 | uint64(fold[3])
	return int(v % uint64(n))
}

// udpEcho answers every datagram on the server's ports and counts them.
type udpEcho struct {
	mu   sync.Mutex
	seen map[string]int // "src:port" -> datagrams
}

func startEcho(t *testing.T, h *lab.Host, ports ...int) *udpEcho {
	t.Helper()
	e := &udpEcho{seen: map[string]int{}}
	var conns []*net.UDPConn
	err := h.Do(func() error {
		for _, p := range ports {
			c, err := net.ListenUDP("udp", &net.UDPAddr{Port: p}) // both families
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		t.Cleanup(func() { c.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				e.mu.Lock()
				e.seen[fmt.Sprintf("%s:%d", from.IP, c.LocalAddr().(*net.UDPAddr).Port)]++
				e.mu.Unlock()
				c.WriteToUDP(buf[:n], from)
			}
		}()
	}
	return e
}

func (e *udpEcho) count(src string, port int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[fmt.Sprintf("%s:%d", src, port)]
}

// sendFlows sends one datagram from every client address to the server's
// port and returns the replies each received within wait.
func sendFlows(t *testing.T, client *lab.Host, srcs []netip.Addr, server netip.Addr, port int, wait time.Duration) map[netip.Addr]int {
	t.Helper()
	conns := make([]*net.UDPConn, len(srcs))
	err := client.Do(func() error {
		for i, s := range srcs {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: s.AsSlice()})
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := &net.UDPAddr{IP: server.AsSlice(), Port: port}
	replies := make(map[netip.Addr]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	for i, c := range conns {
		defer c.Close()
		if _, err := c.WriteToUDP([]byte("flow"), dst); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(deadline)
			buf := make([]byte, 64)
			for {
				if _, _, err := c.ReadFromUDP(buf); err != nil {
					return
				}
				mu.Lock()
				replies[srcs[i]]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return replies
}

// TestBalanceDatapath: 2 and then 3 routers share the client's flows
// exactly as OpenBSD's formula says, each with about 1/N of them; when one
// router dies and the others take its nodes, its flows go through them.
// With balancing ip the cluster MAC is multicast; with ip-stealth it is
// unicast, and the switch must never learn it. The bridge variants put the
// routers' client side on a bridge, br-lan, as on OpenWrt: the datapath
// runs on the bridge device, which has no unicast filter (the membership
// makes it promiscuous) and snoops multicast.
func TestBalanceDatapath(t *testing.T) {
	lab.Require(t)
	// The ip variants attach by tcx where the kernel has it, the
	// ip-stealth ones by a tc filter, so that both paths forward.
	for _, mode := range []struct {
		name, cli, srv string
		bridge, tc     bool
	}{
		{"ip", "01:00:5e:00:01:01", "01:00:5e:00:01:0b", false, false},
		{"ip-stealth", "00:00:5e:00:01:01", "00:00:5e:00:01:0b", false, true},
		{"ip on br-lan", "01:00:5e:00:01:01", "01:00:5e:00:01:0b", true, false},
		{"ip-stealth on br-lan", "00:00:5e:00:01:01", "00:00:5e:00:01:0b", true, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			balance.ForceTC = mode.tc
			defer func() { balance.ForceTC = false }()
			testBalanceDatapath(t, mode.cli, mode.srv, mode.bridge)
		})
	}
}

// balanceLab builds the balance tests' lab: a client switch and a server
// switch, the client (10.10.0.100/24 on eth0, on the client switch) and
// the server; the routers are the test's own.
func balanceLab(t *testing.T, prefix string) (l *lab.Lab, cliSw, srvSw *lab.Switch, client, server *lab.Host) {
	t.Helper()
	l, err := lab.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cliSw, err = l.Switch("cli")
	must(err)
	srvSw, err = l.Switch("srv")
	must(err)
	client, err = l.Host("client")
	must(err)
	server, err = l.Host("server")
	must(err)
	_, err = l.Attach(client, cliSw, "eth0", "10.10.0.100/24")
	must(err)
	return l, cliSw, srvSw, client, server
}

func testBalanceDatapath(t *testing.T, balClientMAC, balServerMAC string, bridge bool) {
	l, cliSw, srvSw, client, server := balanceLab(t, "cbal")
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	srcs := []netip.Addr{netip.MustParseAddr("10.10.0.100")}
	var srcs6 []netip.Addr
	for i := 0; i < balFlows; i++ {
		if i > 0 {
			a := fmt.Sprintf("10.10.0.%d", 100+i)
			must(client.AddAddr("eth0", a+"/24"))
			srcs = append(srcs, netip.MustParseAddr(a))
		}
		// All eight words of source and server differ; the sources are
		// 64 consecutive ones, like the IPv4 ones, so that the shares are
		// even (random addresses are checked by the kernel test of
		// package balance).
		a6 := fmt.Sprintf("fd10::1234:5678:9abc:%x", 0x100+i)
		must(client.AddAddr("eth0", a6+"/64"))
		srcs6 = append(srcs6, netip.MustParseAddr(a6))
	}
	_, err = l.Attach(server, srvSw, "eth0", balServer+"/24", balServer6+"/64")
	must(err)
	ctx := context.Background()
	for _, cmd := range [][]string{
		{"ip", "neigh", "replace", "10.10.0.1", "lladdr", balClientMAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "route", "add", "10.20.0.0/24", "via", "10.10.0.1"},
		{"ip", "-6", "neigh", "replace", "fd10::1", "lladdr", balClientMAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "-6", "route", "add", "fd20::/64", "via", "fd10::1"},
	} {
		_, err := client.Run(ctx, cmd...)
		must(err)
	}
	for _, cmd := range [][]string{
		{"ip", "neigh", "replace", "10.20.0.1", "lladdr", balServerMAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "route", "add", "10.10.0.0/24", "via", "10.20.0.1"},
		{"ip", "-6", "neigh", "replace", "fd20::1", "lladdr", balServerMAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "-6", "route", "add", "fd10::/64", "via", "fd20::1"},
	} {
		_, err := server.Run(ctx, cmd...)
		must(err)
	}
	routers := make([]*balRouter, 3)
	for i := range routers {
		r := &balRouter{name: fmt.Sprintf("r%d", i+1), cliMAC: balClientMAC, srvMAC: balServerMAC, lanDev: "lan"}
		r.host, err = l.Host(r.name)
		must(err)
		must(r.host.Sysctl("net.ipv6.conf.all.forwarding", "1"))
		lanAddrs := []string{fmt.Sprintf("10.10.0.%d/24", i+2), fmt.Sprintf("fd10::%d/64", i+2)}
		if bridge {
			_, err = l.Attach(r.host, cliSw, "lan")
			must(err)
			r.lanDev = "br-lan"
			for _, cmd := range [][]string{
				// Bridge netfilter would run conntrack on every frame
				// entering the bridge, before the datapath on br-lan
				// decides (docs/balancing.md); it is off here and, below,
				// namespace-wide.
				{"ip", "link", "add", "br-lan", "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0"},
				{"ip", "link", "set", "lan", "master", "br-lan"},
				{"ip", "link", "set", "br-lan", "up"},
			} {
				_, err := r.host.Run(ctx, cmd...)
				must(err)
			}
			for _, a := range lanAddrs {
				must(r.host.AddAddr("br-lan", a))
			}
			// The namespace-wide switch wins over the bridge's own.
			for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
				if err := r.host.Sysctl(k, "0"); err != nil {
					t.Logf("%s: %v (no bridge netfilter?)", r.name, err)
				}
			}
		} else {
			_, err = l.Attach(r.host, cliSw, "lan", lanAddrs...)
			must(err)
		}
		_, err = l.Attach(r.host, srvSw, "wan", fmt.Sprintf("10.20.0.%d/24", i+2), fmt.Sprintf("fd20::%d/64", i+2))
		must(err)
		// A ruleset that uses conntrack, so the namespace tracks flows.
		_, err = r.host.Run(ctx, "nft", "add table inet bal; add chain inet bal track { type filter hook forward priority 0; policy accept; }; add rule inet bal track ct state new counter")
		must(err)
		routers[i] = r
		t.Cleanup(func() { r.close(t) })
	}
	echo := startEcho(t, server, 7000, 7001, 7002, 7003, 7102, 7103)
	srv4, srv6 := netip.MustParseAddr(balServer), netip.MustParseAddr(balServer6)

	// Control: without the datapath no router routes frames sent to the
	// cluster MAC (Linux takes them as PACKET_MULTICAST or
	// PACKET_OTHERHOST).
	if got := sendFlows(t, client, srcs[:8], srv4, 7000, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("control run: flows answered without any datapath: %v", got)
	}
	for _, r := range routers {
		if ct := r.conntrackSources(t, "ipv4", 7000); len(ct) != 0 {
			t.Fatalf("control run: %s forwarded %v", r.name, ct)
		}
	}

	// check sends the flows to port and checks that each was forwarded,
	// once, by the router that owns its node, in both directions.
	check := func(phase string, port, n int, masks map[*balRouter]uint32) {
		t.Helper()
		srcs, srv, family := srcs, srv4, "ipv4"
		if port > 7100 {
			srcs, srv, family = srcs6, srv6, "ipv6"
		}
		replies := sendFlows(t, client, srcs, srv, port, 2*time.Second)
		time.Sleep(100 * time.Millisecond) // late duplicates
		tables := map[*balRouter]map[string]bool{}
		for r := range masks {
			tables[r] = r.conntrackSources(t, family, port)
		}
		share := map[*balRouter]int{}
		for _, s := range srcs {
			idx := balOwner(s, srv, n)
			var owner *balRouter
			for r, m := range masks {
				if m&(1<<idx) != 0 {
					owner = r
				}
			}
			if replies[s] != 1 || echo.count(s.String(), port) != 1 {
				t.Errorf("%s: flow %s (node %d, owner %s): %d replies, server saw %d datagrams; want 1 and 1",
					phase, s, idx, owner.name, replies[s], echo.count(s.String(), port))
			}
			for r, tab := range tables {
				replied, seen := tab[s.String()]
				switch {
				case r == owner && !seen:
					t.Errorf("%s: flow %s (node %d) is not in its owner %s's conntrack table", phase, s, idx, r.name)
				case r == owner && !replied:
					t.Errorf("%s: flow %s: the reply did not return through %s", phase, s, r.name)
				case r != owner && seen:
					t.Errorf("%s: flow %s (node %d, owner %s) was forwarded by %s too", phase, s, idx, owner.name, r.name)
				}
			}
			share[owner]++
		}
		for r, m := range masks {
			nodes := 0
			for i := 0; i < n; i++ {
				if m&(1<<i) != 0 {
					nodes++
				}
			}
			want := float64(balFlows) * float64(nodes) / float64(n)
			t.Logf("%s: %s (mask %#b) forwarded %d of %d flows (expected share %.1f)", phase, r.name, m, share[r], balFlows, want)
			if d := float64(share[r]) - want; d > 0.1*want || d < -0.1*want {
				t.Errorf("%s: %s carried %d flows, more than 10%% off %.1f", phase, r.name, share[r], want)
			}
		}
	}

	r1, r2, r3 := routers[0], routers[1], routers[2]
	// Two routers: r1 master of node 0, r2 of node 1; r3 has no datapath.
	r1.open(t, 2)
	r2.open(t, 2)
	r1.setMask(t, 0b01)
	r2.setMask(t, 0b10)
	check("2 routers", 7001, 2, map[*balRouter]uint32{r1: 0b01, r2: 0b10, r3: 0})

	// Three routers, one node each.
	r1.open(t, 3)
	r2.open(t, 3)
	r3.open(t, 3)
	r1.setMask(t, 0b001)
	r2.setMask(t, 0b010)
	r3.setMask(t, 0b100)
	check("3 routers", 7002, 3, map[*balRouter]uint32{r1: 0b001, r2: 0b010, r3: 0b100})
	check("3 routers, IPv6", 7102, 3, map[*balRouter]uint32{r1: 0b001, r2: 0b010, r3: 0b100})

	// r2 dies: its datapath is gone and r1 becomes master of its node.
	r2.close(t)
	took := r1.setMask(t, 0b011)
	t.Logf("r1 took node 1 in %v", took)
	check("r2 dead", 7003, 3, map[*balRouter]uint32{r1: 0b011, r2: 0, r3: 0b100})
	check("r2 dead, IPv6", 7103, 3, map[*balRouter]uint32{r1: 0b011, r2: 0, r3: 0b100})

	// No frame ever left a router with the cluster MAC as its source: the
	// switches never learnt it (for ip-stealth, what keeps it flooded).
	for _, sw := range []*lab.Switch{cliSw, srvSw} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(cctx, "ip", "netns", "exec", sw.NS, "bridge", "fdb", "show", "br", sw.Bridge).CombinedOutput()
		cancel()
		must(err)
		if strings.Contains(string(out), balClientMAC+" ") || strings.Contains(string(out), balServerMAC+" ") {
			t.Errorf("switch %s learnt the cluster MAC:\n%s", sw.Name, out)
		}
	}
}
