package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

const ruleset = lab.FirewallRuleset

// firewallLab: client on the LAN, server on the WAN, two routers with a
// LAN VIP (the client's gateway), a WAN VIP (the SNAT address) and a
// dedicated sync link.
type firewallLab struct {
	*cluster
	server *lab.Host
	key    string
}

func newFirewallLab(t *testing.T) *firewallLab {
	lab.Require(t)
	requireTool(t, "nft")
	l, err := lab.New("csy")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	c := &cluster{t: t, lab: l, sws: map[string]*lab.Switch{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"lan", "wan", "sync"} {
		sw, err := l.Switch(s)
		must(err)
		c.sws[s] = sw
	}
	c.client, err = l.Host("client")
	must(err)
	_, err = l.Attach(c.client, c.sws["lan"], "lan", "10.0.1.100/24")
	must(err)
	server, err := l.Host("server")
	must(err)
	_, err = l.Attach(server, c.sws["wan"], "wan", "10.0.2.100/24")
	must(err)
	rules := filepath.Join(t.TempDir(), "rules.nft")
	must(os.WriteFile(rules, []byte(ruleset), 0o644))
	for i := 0; i < 2; i++ {
		h, err := l.Host(fmt.Sprintf("r%d", i+1))
		must(err)
		r := &router{name: h.Name, host: h, links: map[string]*lab.Link{}, dir: t.TempDir()}
		for _, s := range []string{"lan", "wan", "sync"} {
			n := map[string]int{"lan": 1, "wan": 2, "sync": 3}[s]
			lk, err := l.Attach(h, c.sws[s], s, fmt.Sprintf("10.0.%d.%d/24", n, i+2))
			must(err)
			r.links[s] = lk
		}
		c.run(h, "nft", "-f", rules)
		c.routers = append(c.routers, r)
	}
	c.run(c.client, "ip", "route", "add", "default", "via", "10.0.1.1")
	var k [32]byte
	_, _ = rand.Read(k[:])
	return &firewallLab{cluster: c, server: server, key: hex.EncodeToString(k[:])}
}

// routerConf: sub-second CARP (so TCP's retransmission timer, not CARP,
// dominates the stall) on the LAN and WAN VIPs, and sync to the other one.
func (f *firewallLab) routerConf(i int, sync bool) string {
	skew := []int{26, 40}[i]
	conf := confText(true,
		vhidConf{iface: "lan", vhid: 1, advbase: 0, advskew: skew, password: "l", addrs: []string{"10.0.1.1/24"}},
		vhidConf{iface: "wan", vhid: 2, advbase: 0, advskew: skew, password: "w", addrs: []string{"10.0.2.1/24"}})
	if sync {
		conf += fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n\toption window '50ms'\n",
			3-i, f.key)
	}
	return conf
}

// stream is one long-lived TCP connection that echoes a line every 50 ms.
type stream struct {
	conn     net.Conn
	echoes   atomic.Int64
	lastEcho atomic.Int64 // unix nanoseconds
	err      atomic.Value
}

// traffic runs the server's echo services and the client's flows.
type traffic struct {
	tcp  []*stream
	udp  []*stream
	stop chan struct{}
	wg   sync.WaitGroup
}

func (f *firewallLab) startTraffic(nTCP, nUDP int) *traffic {
	t := f.t
	tr := &traffic{stop: make(chan struct{})}
	var ln net.Listener
	var uc net.PacketConn
	if err := f.server.Do(func() (err error) {
		if ln, err = net.Listen("tcp4", "10.0.2.100:5000"); err != nil {
			return err
		}
		uc, err = net.ListenPacket("udp4", "10.0.2.100:5001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(tr.stop); ln.Close(); uc.Close(); tr.wg.Wait() })
	tr.wg.Add(2)
	go func() { // TCP echo server
		defer tr.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				defer c.Close()
				go func() { <-tr.stop; c.Close() }()
				s := bufio.NewScanner(c)
				for s.Scan() {
					if _, err := c.Write(append(s.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	go func() { // UDP echo server
		defer tr.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = uc.WriteTo(buf[:n], from)
		}
	}()

	dial := func(network, addr string) net.Conn {
		var c net.Conn
		if err := f.client.Do(func() (err error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err = d.Dial(network, addr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	run := func(s *stream, udp bool) {
		defer tr.wg.Done()
		go func() { <-tr.stop; s.conn.Close() }()
		r := bufio.NewReader(s.conn)
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			msg := fmt.Sprintf("%d\n", i)
			_ = s.conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := s.conn.Write([]byte(msg)); err != nil {
				s.err.Store(err)
				return
			}
			if udp {
				// UDP: read what comes, never block the writer for long.
				_ = s.conn.SetReadDeadline(time.Now().Add(40 * time.Millisecond))
				if n, err := s.conn.Read(buf); err == nil && n > 0 {
					s.echoes.Add(1)
					s.lastEcho.Store(time.Now().UnixNano())
				}
				continue
			}
			if _, err := r.ReadString('\n'); err != nil {
				s.err.Store(err)
				return
			}
			s.echoes.Add(1)
			s.lastEcho.Store(time.Now().UnixNano())
		}
	}
	for i := 0; i < nTCP; i++ {
		s := &stream{conn: dial("tcp4", "10.0.2.100:5000")}
		tr.tcp = append(tr.tcp, s)
		tr.wg.Add(1)
		go run(s, false)
	}
	for i := 0; i < nUDP; i++ {
		s := &stream{conn: dial("udp4", "10.0.2.100:5001")}
		tr.udp = append(tr.udp, s)
		tr.wg.Add(1)
		go run(s, true)
	}
	return tr
}

// alive counts the streams that echoed after t and have no error.
func alive(ss []*stream, t time.Time) (n int, errs []string) {
	for _, s := range ss {
		if e := s.err.Load(); e != nil {
			errs = append(errs, e.(error).Error())
			continue
		}
		if s.lastEcho.Load() > t.UnixNano() {
			n++
		}
	}
	return n, errs
}

// failover crashes r1 (the master of both VIPs) under traffic and returns
// when r2 has taken over.
func (f *firewallLab) failover(sync bool) (tr *traffic, crash time.Time) {
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, f.routerConf(0, sync))
	c.waitState(r1, "lan", 1, "MASTER", 5*time.Second)
	c.waitState(r1, "wan", 2, "MASTER", 5*time.Second)
	c.start(r2, f.routerConf(1, sync))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	if sync {
		c.waitFor(10*time.Second, "r2's initial sync", func() bool {
			st := c.status(r2)
			return st.Sync.Bulk.Synced && st.Sync.Established
		})
	}
	tr = f.startTraffic(20, 5)
	c.waitFor(5*time.Second, "traffic flowing", func() bool {
		n, _ := alive(tr.tcp, time.Now().Add(-time.Second))
		return n == len(tr.tcp)
	})
	if sync {
		c.waitFor(5*time.Second, "flows synced to r2", func() bool {
			return c.status(r2).Sync.FlowsPeer >= 25
		})
	}
	time.Sleep(500 * time.Millisecond)
	crash = time.Now()
	c.crash(r1)
	c.waitState(r2, "lan", 1, "MASTER", 3*time.Second)
	c.waitState(r2, "wan", 2, "MASTER", 3*time.Second)
	return tr, crash
}

// TestSyncFlowsSurviveFailover: with state sync every TCP stream and UDP
// flow continues through the backup after the master crashes, without a
// reset.
func TestSyncFlowsSurviveFailover(t *testing.T) {
	f := newFirewallLab(t)
	tr, crash := f.failover(true)
	f.waitFor(20*time.Second, "every flow echoing again through r2", func() bool {
		nt, _ := alive(tr.tcp, crash.Add(100*time.Millisecond))
		nu, _ := alive(tr.udp, crash.Add(100*time.Millisecond))
		return nt == len(tr.tcp) && nu == len(tr.udp)
	})
	if _, errs := alive(tr.tcp, crash); len(errs) > 0 {
		t.Fatalf("%d TCP streams failed: %v", len(errs), errs)
	}
	st := f.status(f.routers[1]).Sync
	t.Logf("r2 sync: %d flows from peer, %d B received, counters %+v", st.FlowsPeer, st.Counters.BytesReceived, st.Counters)
	out := f.run(f.routers[1].host, "conntrack", "-L")
	if !strings.Contains(out, "dport=5000") {
		t.Fatalf("r2's conntrack table has no synced stream:\n%s", out)
	}
}

// TestNoSyncFlowsBreak is the control run: the same failover without sync
// stalls every TCP stream (the backup's firewall drops their mid-stream
// packets), which proves the test above can fail.
func TestNoSyncFlowsBreak(t *testing.T) {
	f := newFirewallLab(t)
	tr, crash := f.failover(false)
	time.Sleep(8 * time.Second)
	n, _ := alive(tr.tcp, crash.Add(time.Second))
	if n != 0 {
		t.Fatalf("%d of %d TCP streams survived without sync: the control run does not control anything", n, len(tr.tcp))
	}
	nu, _ := alive(tr.udp, crash.Add(time.Second))
	t.Logf("without sync: 0/%d TCP streams alive; %d/%d UDP flows (a new UDP flow from the LAN is allowed and gets the same SNAT)", len(tr.tcp), nu, len(tr.udp))
}

// TestSyncWrongKey: a peer with another key injects nothing and the drop
// counters say why.
func TestSyncWrongKey(t *testing.T) {
	f := newFirewallLab(t)
	c := f.cluster
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, f.routerConf(0, true))
	c.waitState(r1, "lan", 1, "MASTER", 5*time.Second)
	good := f.key
	var k [32]byte
	_, _ = rand.Read(k[:])
	f.key = hex.EncodeToString(k[:])
	c.start(r2, f.routerConf(1, true))
	f.key = good
	f.startTraffic(3, 0)
	c.waitFor(10*time.Second, "authentication drops on r2", func() bool {
		return c.status(r2).Sync.Counters.DropAuth >= 2
	})
	st := c.status(r2)
	if st.Sync.FlowsPeer != 0 || st.Sync.Established {
		t.Fatalf("wrong key: %+v", st.Sync)
	}
	out := f.run(r2.host, "conntrack", "-L")
	if strings.Contains(out, "dport=5000") {
		t.Fatalf("r2 injected a flow with the wrong key:\n%s", out)
	}
}
