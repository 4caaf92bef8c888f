package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
)

// The upstream-path lab of the tracker tests (issue #11), the same topology
// as bench/track:
//
//	client 10.0.1.100 ── lan ── r1 .2, r2 .3 (LAN VIP 10.0.1.1, the client's gateway)
//	                     sync ─ r1 10.0.3.2, r2 10.0.3.3 (conntrack sync)
//	r1 .2, r2 .3 ──────── wan ── gw1 10.0.2.251, gw2 10.0.2.252 (WAN VIP 10.0.2.1, the SNAT address)
//	gw1 10.0.8.11, gw2 .12 ─ core ─ isp 10.0.8.1 (what the ping trackers probe)
//	isp 10.0.9.1 ─────────── srv ── server 10.0.9.100 (the client's TCP stream goes here)
//
// r1's default route is gw1, r2's gw2 (each router's own "modem"); the isp
// routes the WAN subnet back through gw2. A dead gw1 (an nftables table
// dropping every IP packet it receives) takes r1's upstream path away and
// nothing else: every link of r1 stays up and the adverts on lan and wan
// keep flowing.
const (
	trackTarget = "10.0.8.1"
	trackServer = "10.0.9.100"
	wanVIP4     = "10.0.2.1/24"
)

// trackRules: each router's firewall, forwarding only from the LAN (and
// the answers), the LAN SNATed to the WAN VIP; the router's own packets
// (the tracker's probes) keep its own address.
const trackRules = `
flush ruleset
table inet fw {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "lan" oifname "wan" tcp flags & (syn | ack | fin | rst) == syn ct state new accept
		iifname "lan" oifname "wan" meta l4proto icmp ct state new accept
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" ip saddr 10.0.1.0/24 snat to 10.0.2.1
	}
}
`

// deadGateway makes a gateway drop every IP packet it receives.
const deadGateway = `
table inet dead {
	chain pre {
		type filter hook prerouting priority -300; policy drop;
	}
}
`

// lossyGateway drops one in ten of the packets a gateway receives from the
// WAN side (the kernel here has no sch_netem; nftables' random numbers do
// the same for this purpose).
const lossyGateway = `
table inet lossy {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "wan" numgen random mod 10 == 0 counter drop
	}
}
`

type trackLab struct {
	*cluster
	server, isp, gw1, gw2 *lab.Host
	key                   string
	dir                   string
}

func newTrackLab(t *testing.T) *trackLab {
	t.Helper()
	lab.Require(t)
	requireTool(t, "nft")
	l, err := lab.New("ctr")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	c := &cluster{t: t, lab: l, sws: map[string]*lab.Switch{}}
	tl := &trackLab{cluster: c, dir: t.TempDir()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"lan", "wan", "sync", "core", "srv"} {
		sw, err := l.Switch(s)
		must(err)
		c.sws[s] = sw
	}
	host := func(name string, links ...[3]string) *lab.Host {
		h, err := l.Host(name)
		must(err)
		for _, k := range links {
			_, err := l.Attach(h, c.sws[k[0]], k[1], k[2])
			must(err)
		}
		return h
	}
	c.client = host("client", [3]string{"lan", "lan", "10.0.1.100/24"})
	tl.server = host("server", [3]string{"srv", "srv", trackServer + "/24"})
	tl.isp = host("isp", [3]string{"core", "core", trackTarget + "/24"}, [3]string{"srv", "srv", "10.0.9.1/24"})
	tl.gw1 = host("gw1", [3]string{"wan", "wan", "10.0.2.251/24"}, [3]string{"core", "core", "10.0.8.11/24"})
	tl.gw2 = host("gw2", [3]string{"wan", "wan", "10.0.2.252/24"}, [3]string{"core", "core", "10.0.8.12/24"})
	for name, text := range map[string]string{"router.nft": trackRules, "dead.nft": deadGateway, "lossy.nft": lossyGateway} {
		must(os.WriteFile(filepath.Join(tl.dir, name), []byte(text), 0o644))
	}
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
		c.run(h, "nft", "-f", filepath.Join(tl.dir, "router.nft"))
		c.run(h, "ip", "route", "add", "default", "via", fmt.Sprintf("10.0.2.%d", 251+i))
		c.routers = append(c.routers, r)
	}
	c.run(c.client, "ip", "route", "add", "default", "via", "10.0.1.1")
	c.run(tl.server, "ip", "route", "add", "default", "via", "10.0.9.1")
	c.run(tl.gw1, "ip", "route", "add", "default", "via", trackTarget)
	c.run(tl.gw2, "ip", "route", "add", "default", "via", trackTarget)
	c.run(tl.isp, "ip", "route", "add", "10.0.2.0/24", "via", "10.0.8.12")
	var k [32]byte
	_, _ = rand.Read(k[:])
	tl.key = hex.EncodeToString(k[:])
	return tl
}

// pingTracker is a `config track` section of type ping probing the isp;
// extra holds more option lines.
func pingTracker(name string, extra ...string) string {
	s := fmt.Sprintf("config track '%s'\n\toption type 'ping'\n\tlist target '%s'\n", name, trackTarget)
	for _, e := range extra {
		s += "\t" + e + "\n"
	}
	return s + "\n"
}

// conf renders router i's configuration: preempt on, advbase 1, advskew 0
// (r1) or 1 (r2), vhid 1 on lan and vhid 2 on wan, conntrack sync if
// sync, and the given tracker sections.
func (tl *trackLab) conf(i int, sync bool, tracks ...string) string {
	skew := i
	s := confText(true,
		vhidConf{iface: "lan", vhid: 1, advbase: 1, advskew: skew, password: "l", addrs: []string{vip4}},
		vhidConf{iface: "wan", vhid: 2, advbase: 1, advskew: skew, password: "w", addrs: []string{wanVIP4}})
	if sync {
		s += fmt.Sprintf("config sync 'sync'\n\toption interface 'sync'\n\toption peer '10.0.3.%d'\n\toption key '%s'\n\toption window '50ms'\n\n", 3-i, tl.key)
	}
	return s + strings.Join(tracks, "")
}

// masterDown is r2's master-down interval with tl.conf: 3 × (1 + 1/256) s.
const masterDown = 3 * (time.Second + time.Second/256)

// establish starts r1 and waits for it to master both vhids, then r2 and
// waits for it to be a backup of both that hears r1 (and, with sync, has
// done its initial transfer), and for every tracker of both to be up.
func (tl *trackLab) establish(sync bool, tracks ...string) {
	c := tl.cluster
	c.t.Helper()
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, tl.conf(0, sync, tracks...))
	c.waitState(r1, "lan", 1, "MASTER", 8*time.Second)
	c.waitState(r1, "wan", 2, "MASTER", 8*time.Second)
	c.start(r2, tl.conf(1, sync, tracks...))
	c.waitHearing(r2, "lan", 1, 4*time.Second)
	c.waitHearing(r2, "wan", 2, 4*time.Second)
	if sync {
		c.waitFor(10*time.Second, "r2's initial sync", func() bool {
			st := c.status(r2)
			return st.Sync.Bulk.Synced && st.Sync.Established
		})
	}
	for _, r := range []*router{r1, r2} {
		c.waitFor(10*time.Second, r.name+"'s trackers up", func() bool {
			st := tl.view(r)
			if len(st.Trackers) != len(tracks) {
				return false
			}
			for _, tr := range st.Trackers {
				if tr.State != "up" {
					return false
				}
			}
			return true
		})
	}
	c.onlyHolder(r1, "lan", vip4)
	c.onlyHolder(r1, "wan", wanVIP4)
}

// gateway applies an nft rules file (dead.nft, lossy.nft) to gw, or
// deletes the table it made (on false).
func (tl *trackLab) gateway(gw *lab.Host, file string, on bool) {
	tl.t.Helper()
	if on {
		tl.run(gw, "nft", "-f", filepath.Join(tl.dir, file))
		return
	}
	tl.run(gw, "nft", "delete", "table", "inet", strings.TrimSuffix(file, ".nft"))
}

// The contract's status JSON (issue #11), decoded from the wire, not through
// the daemon's Go types: this is what outside tools see.
type tSource struct {
	Group   string     `json:"group"`
	Name    string     `json:"name"`
	Value   int        `json:"value"`
	Reason  string     `json:"reason"`
	Since   time.Time  `json:"since"`
	Expires *time.Time `json:"expires"`
}

type tVHID struct {
	Interface       string    `json:"interface"`
	VHID            int       `json:"vhid"`
	State           string    `json:"state"`
	Demotion        int       `json:"demotion"`
	Groups          []string  `json:"groups"`
	DemotionSources []tSource `json:"demotion_sources"`
	PeerDemotion    *int      `json:"peer_demotion"`
	Counters        struct {
		Transitions uint64 `json:"transitions"`
	} `json:"counters"`
}

type tTracker struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Group   string    `json:"group"`
	Weight  int       `json:"weight"`
	State   string    `json:"state"`
	Value   int       `json:"value"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Rounds  int       `json:"rounds"`
	Good    int       `json:"good"`
	Bad     int       `json:"bad"`
	Error   string    `json:"error"`
	Targets []struct {
		Address  string  `json:"address"`
		Sent     int     `json:"sent"`
		Received int     `json:"received"`
		RTTms    float64 `json:"rtt_ms"`
	} `json:"targets"`
}

type tView struct {
	Demotion struct {
		Groups []struct {
			Name     string    `json:"name"`
			Demotion int       `json:"demotion"`
			Sources  []tSource `json:"sources"`
		} `json:"groups"`
	} `json:"demotion"`
	VHIDs       []tVHID                   `json:"vhids"`
	Trackers    []tTracker                `json:"trackers"`
	Transitions []daemon.TransitionRecord `json:"transitions"`
	SplitBrain  []struct {
		Interface string    `json:"interface"`
		VHID      int       `json:"vhid"`
		Since     time.Time `json:"since"`
	} `json:"split_brain"`
	SplitBrainAlarms int `json:"split_brain_alarms"`
}

// view returns r's status in the contract's shape.
func (c *cluster) view(r *router) tView {
	c.t.Helper()
	raw, err := daemon.Call(r.sock(), daemon.Request{Method: "status"})
	if err != nil {
		c.t.Fatalf("%s status: %v", r.name, err)
	}
	var v tView
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Fatalf("%s status: %v\n%s", r.name, err, raw)
	}
	return v
}

func (v tView) vhid(iface string, id int) tVHID {
	for _, x := range v.VHIDs {
		if x.Interface == iface && x.VHID == id {
			return x
		}
	}
	return tVHID{}
}

func (v tView) tracker(name string) (tTracker, bool) {
	for _, x := range v.Trackers {
		if x.Name == name {
			return x, true
		}
	}
	return tTracker{}, false
}

// transitions sums the transition counters of every vhid.
func (v tView) transitions() uint64 {
	var n uint64
	for _, x := range v.VHIDs {
		n += x.Counters.Transitions
	}
	return n
}

// tcpStream is one long-lived TCP connection from the client to the
// server, echoing a line every 50 ms.
type tcpStream struct {
	echoes   atomic.Int64
	lastEcho atomic.Int64 // unix nanoseconds
	err      atomic.Value
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (tl *trackLab) startStream() *tcpStream {
	t := tl.t
	t.Helper()
	s := &tcpStream{stop: make(chan struct{})}
	var ln net.Listener
	if err := tl.server.Do(func() (err error) {
		ln, err = net.Listen("tcp4", trackServer+":5000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	s.wg.Add(1)
	go func() { // echo server, one connection
		defer s.wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-s.stop; c.Close() }()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
				return
			}
		}
	}()
	if err := tl.client.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.Dial("tcp4", trackServer+":5000")
		return err
	}); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { close(s.stop); ln.Close(); conn.Close(); s.wg.Wait() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		go func() { <-s.stop; conn.Close() }()
		r := bufio.NewReader(conn)
		for i := 0; i < 1<<20; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := fmt.Fprintf(conn, "%d\n", i); err != nil {
				s.err.Store(err)
				return
			}
			if _, err := r.ReadString('\n'); err != nil {
				s.err.Store(err)
				return
			}
			s.echoes.Add(1)
			s.lastEcho.Store(time.Now().UnixNano())
		}
	}()
	return s
}

// echoedAfter reports whether the stream has echoed after t without error.
func (s *tcpStream) echoedAfter(t time.Time) bool {
	return s.err.Load() == nil && s.lastEcho.Load() > t.UnixNano()
}

func (s *tcpStream) failed() error {
	if e, ok := s.err.Load().(error); ok {
		return e
	}
	return nil
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// runIn runs a command in a namespace that is not a lab.Host (a switch's),
// bounded by ctx; it returns the combined output.
func runIn(ctx context.Context, ns string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}
