package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// hostileKernel is the conntrack table of a peer that holds the sync key
// and sends whatever it likes: the flows in table go to the receiver as
// NEW at each takeover (hostilePeer.send); what the receiver sends is
// thrown away.
type hostileKernel struct {
	mu     sync.Mutex
	table  []flow.Flow
	events chan flow.Event
}

func (k *hostileKernel) Each(_ context.Context, fn func(*flow.Flow)) error {
	k.mu.Lock()
	fs := append([]flow.Flow(nil), k.table...)
	k.mu.Unlock()
	for i := range fs {
		fn(&fs[i])
	}
	return nil
}
func (k *hostileKernel) Events() <-chan flow.Event { return k.events }
func (k *hostileKernel) Inject(_ context.Context, fs []flow.Flow, _ func(*flow.Flow) bool) []error {
	return make([]error, len(fs))
}
func (k *hostileKernel) Delete(context.Context, []flow.Key) error { return nil }

// hostilePeer is a sync engine run by the test with the lab's key.
type hostilePeer struct {
	e *ctsync.Engine
	k *hostileKernel
}

// send has the peer send flows as NEW: they become its table, which it
// takes as its own (a takeover), even the tuples it has from the
// receiver.
func (h *hostilePeer) send(flows ...flow.Flow) {
	h.k.mu.Lock()
	h.k.table = flows
	h.k.mu.Unlock()
	h.e.Takeover(context.Background())
}

// startHostilePeer runs a sync engine with f's key on r1's sync address
// (where r2 expects its peer), in the test process. carpd does not run on
// r1.
func startHostilePeer(t *testing.T, f *firewallLab) *hostilePeer {
	t.Helper()
	var pc net.PacketConn
	err := f.routers[0].host.Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", "10.0.3.2:7112")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	kb, err := hex.DecodeString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	k := &hostileKernel{events: make(chan flow.Event, 64)}
	e, err := ctsync.New(ctsync.Config{Key: [wire.KeyLen]byte(kb), Name: "hostile",
		Peer: netip.MustParseAddrPort("10.0.3.3:7112"), Window: 20 * time.Millisecond}, k, pc)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &hostilePeer{e: e, k: k}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// tcpOf is a TCP flow orig src:sport -> dst:dport whose reply goes
// rsrc:rsport -> rdst:rdport.
func tcpOf(src string, sport uint16, dst string, dport uint16, rsrc string, rsport uint16, rdst string, rdport uint16, state uint8) flow.Flow {
	f := flow.Flow{
		Orig:     flow.Tuple{Src: addr(src), Dst: addr(dst), Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport},
		Reply:    flow.Tuple{Src: addr(rsrc), Dst: addr(rdst), Proto: flow.ProtoTCP, SrcPort: rsport, DstPort: rdport},
		TCPState: state, Timeout: 3600,
		Status: flow.StatusConfirmed | flow.StatusSeenReply | flow.StatusAssured,
	}
	if _, _, ok := f.SNAT(); ok {
		f.Status |= flow.StatusSrcNAT
	}
	if _, _, ok := f.DNAT(); ok {
		f.Status |= flow.StatusDstNAT
	}
	return f
}

// ctEntry is one line of `conntrack -L` for a TCP flow.
var ctLine = regexp.MustCompile(`^tcp\s+6\s+(\d+)\s+\S+\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)`)

type ctEntry struct {
	timeout      int
	orig, reply  string // "src:sport>dst:dport"
	sport, rport string
}

// tcpEntries lists r's TCP conntrack entries (all zones).
func (f *firewallLab) tcpEntries(r *router) []ctEntry {
	out := f.run(r.host, "conntrack", "-L", "-p", "tcp")
	var es []ctEntry
	for _, l := range strings.Split(out, "\n") {
		m := ctLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		to, _ := strconv.Atoi(m[1])
		es = append(es, ctEntry{timeout: to,
			orig:  m[2] + ":" + m[4] + ">" + m[3] + ":" + m[5],
			reply: m[6] + ":" + m[8] + ">" + m[7] + ":" + m[9],
			sport: m[4], rport: m[9]})
	}
	return es
}

// TestSyncHostilePeerRefused: a peer that holds the key sends, in one
// batch, what the hardening issue lists: an "established" entry to the
// receiver's own sshd, a DNAT port forward onto the receiver's own
// (non-virtual) WAN address, a UDP flow its config leaves out, a zone it
// does not use, and a five-day timeout on a flow the kernel gives two
// minutes, with one legitimate flow. The receiver (carpd on r2, the real
// kernel) injects the legitimate one, clamps the timeout, refuses the rest
// and its counters say why.
func TestSyncHostilePeerRefused(t *testing.T) {
	f := newFirewallLab(t)
	r2 := f.routers[1]
	conf := f.routerConf(1, true) + "\tlist protocol 'tcp'\n\tlist protocol 'icmp'\n\tlist zone '0'\n"
	f.start(r2, conf)
	peer := startHostilePeer(t, f)
	f.waitFor(10*time.Second, "session with the hostile peer", func() bool { return f.status(r2).Sync.Established })

	const day = 86400
	legit := tcpOf("10.0.1.100", 41000, "10.0.2.100", 443, "10.0.2.100", 443, "10.0.2.1", 41000, flow.TCPEstablished)
	sshd := tcpOf("10.0.1.100", 41001, "10.0.1.3", 22, "10.0.1.3", 22, "10.0.1.100", 41001, flow.TCPEstablished)
	dnat := tcpOf("10.0.2.100", 41002, "10.0.2.3", 8080, "10.0.1.100", 80, "10.0.2.100", 41002, flow.TCPEstablished)
	udp := legit
	udp.Orig.Proto, udp.Reply.Proto, udp.TCPState = flow.ProtoUDP, flow.ProtoUDP, 0
	udp.Orig.SrcPort, udp.Reply.DstPort = 41003, 41003
	zone := tcpOf("10.0.1.100", 41004, "10.0.2.100", 443, "10.0.2.100", 443, "10.0.2.1", 41004, flow.TCPEstablished)
	zone.Zone = 7
	long := tcpOf("10.0.1.100", 41005, "10.0.2.100", 443, "10.0.2.100", 443, "10.0.2.1", 41005, flow.TCPFinWait)
	long.Timeout = 5 * day
	peer.send(sshd, dnat, udp, zone, long, legit)
	f.waitFor(10*time.Second, "the legitimate flow injected", func() bool {
		for _, e := range f.tcpEntries(r2) {
			if e.sport == "41000" {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // the same batch; nothing later
	got := map[string]ctEntry{}
	for _, e := range f.tcpEntries(r2) {
		got[e.sport] = e
	}
	if out := f.run(r2.host, "conntrack", "-L", "-p", "udp"); strings.Contains(out, "sport=41003") {
		t.Errorf("UDP flow the config leaves out injected:\n%s", out)
	}
	for sport, what := range map[string]string{"41001": "established entry to our own sshd", "41002": "DNAT onto our own address",
		"41004": "flow of a zone we do not use"} {
		if e, ok := got[sport]; ok {
			t.Errorf("%s injected: %+v", what, e)
		}
	}
	if e, ok := got["41005"]; !ok || e.timeout > 120 {
		t.Errorf("FIN_WAIT flow with a five-day timeout: %+v (present %v), want a timeout of at most 120 s", e, ok)
	}
	c := f.status(r2).Sync.Counters
	t.Logf("refused: local %d, protocol %d, zone %d; clamped %d", c.RefusedLocal, c.RefusedProtocol, c.RefusedZone, c.Clamped)
	if c.RefusedLocal != 2 || c.RefusedProtocol != 1 || c.RefusedZone != 1 || c.Clamped < 1 {
		t.Errorf("counters %+v: want refused_local 2, refused_protocol 1, refused_zone 1, timeouts_clamped >= 1", c)
	}
}

// TestSyncClashKeepsLocalFlow: r2 forwards a live connection; a peer with
// the key sends a flow with the same original tuple but another NAT. The
// live entry stays as it is (the connection keeps working) and the
// refusal is counted.
func TestSyncClashKeepsLocalFlow(t *testing.T) {
	f := newFirewallLab(t)
	r2 := f.routers[1]
	f.start(r2, f.routerConf(1, true))
	f.waitState(r2, "lan", 1, "MASTER", 10*time.Second)
	peer := startHostilePeer(t, f)
	f.waitFor(10*time.Second, "session with the hostile peer", func() bool { return f.status(r2).Sync.Established })
	tr := f.startTraffic(1, 0)
	var live ctEntry
	f.waitFor(5*time.Second, "r2 forwards the client's connection", func() bool {
		for _, e := range f.tcpEntries(r2) {
			if strings.HasSuffix(e.orig, ">10.0.2.100:5000") {
				live = e
				return true
			}
		}
		return false
	})
	sport, _ := strconv.Atoi(live.sport)
	rport, _ := strconv.Atoi(live.rport)
	// Same original tuple, reply to another NAT port: replacing the entry
	// would send the server's answers to a port nobody has.
	clash := tcpOf("10.0.1.100", uint16(sport), "10.0.2.100", 5000, "10.0.2.100", 5000, "10.0.2.1", uint16(rport+1), flow.TCPEstablished)
	// One more whose reply tuple is the live entry's.
	clashReply := tcpOf("10.0.1.100", uint16(sport+1), "10.0.2.100", 5000, "10.0.2.100", 5000, "10.0.2.1", uint16(rport), flow.TCPEstablished)
	recv := f.status(r2).Sync.Counters.FlowsReceived
	peer.send(clash, clashReply)
	f.waitFor(10*time.Second, "the peer's flows received", func() bool {
		return f.status(r2).Sync.Counters.FlowsReceived >= recv+2
	})
	time.Sleep(300 * time.Millisecond)
	found := false
	for _, e := range f.tcpEntries(r2) {
		if e.orig == live.orig {
			found = true
			if e.reply != live.reply {
				t.Errorf("the live entry was replaced: %s, was %s", e.reply, live.reply)
			}
		}
	}
	if !found {
		t.Errorf("the live entry %s is gone", live.orig)
	}
	before := tr.tcp[0].echoes.Load()
	time.Sleep(500 * time.Millisecond)
	if tr.tcp[0].echoes.Load() == before {
		t.Errorf("the connection stopped echoing: %v", tr.tcp[0].err.Load())
	}
	if n := f.status(r2).Sync.Counters.RefusedClash; n != 2 {
		t.Errorf("refused_clash %d, want 2", n)
	}
}

// TestSyncSessionSurvivesSameSecondRestart: r1 restarts twice within one
// second, so its last two runs have the same session epoch; r2 held the
// first of them and refuses the second while the first may still be
// alive. r1 keeps its sync demotion past its bulk timeout meanwhile
// (handshake_failing), and once the first run has been silent long
// enough r2 takes the new one: the session comes back and r1 gets the
// table, without giving up on it.
func TestSyncSessionSurvivesSameSecondRestart(t *testing.T) {
	f := newFirewallLab(t)
	r1, r2 := f.routers[0], f.routers[1]
	conf1 := f.routerConf(0, true) + "\toption bulk_timeout '3s'\n"
	f.start(r2, f.routerConf(1, true))
	f.start(r1, conf1)
	f.waitFor(10*time.Second, "session up", func() bool {
		return f.status(r1).Sync.Established && f.status(r2).Sync.Established
	})
	restart := func() {
		r1.proc.Kill()
		if err := r1.proc.Wait(5 * time.Second); err != nil && !strings.Contains(err.Error(), "signal") {
			t.Fatal(err)
		}
		f.start(r1, conf1)
	}
	same := false
	for try := 0; try < 5 && !same; try++ {
		// From the start of a second, two restarts fit in it.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
		before := time.Now()
		frames := f.status(r2).Sync.Counters.FramesReceived
		restart()
		// r2 takes this run (a higher epoch than the first) at its
		// first HELLO: frames of the killed run cannot come any more.
		f.waitFor(2*time.Second, "r2 takes r1's new run", func() bool {
			return f.status(r2).Sync.Counters.FramesReceived > frames
		})
		epochDrops := f.status(r2).Sync.Counters.DropEpoch
		restart()
		f.waitFor(2*time.Second, "r2 refuses the second run", func() bool {
			return f.status(r2).Sync.Counters.DropEpoch > epochDrops
		})
		same = time.Now().Unix() == before.Unix()
		if !same {
			t.Logf("restarts spanned a second boundary (%v); again", time.Since(before))
			f.waitFor(30*time.Second, "session up again", func() bool {
				return f.status(r1).Sync.Established && f.status(r2).Sync.Established
			})
		}
	}
	if !same {
		t.Fatal("could not restart twice within one second")
	}
	restarted := time.Now()
	time.Sleep(5 * time.Second) // past r1's bulk timeout of 3 s
	st := f.status(r1)
	t.Logf("5 s after: established %v, handshake failing %v, bulk %+v, demotion %+v, r2 drop_epoch %d",
		st.Sync.Established, st.Sync.HandshakeFailing, st.Sync.Bulk, st.Demotion, f.status(r2).Sync.Counters.DropEpoch)
	if !st.Sync.Established {
		if st.Sync.Bulk.Synced || st.Demotion.Sync == 0 || !st.Sync.HandshakeFailing {
			t.Fatalf("handshake failing, but the sync demotion was lifted: %+v %+v", st.Sync.Bulk, st.Demotion)
		}
	}
	f.waitFor(40*time.Second, "session re-established and r1's bulk complete", func() bool {
		s1, s2 := f.status(r1), f.status(r2)
		return s1.Sync.Established && s2.Sync.Established && s1.Sync.Bulk.Synced
	})
	t.Logf("session back after %v", time.Since(restarted).Round(100*time.Millisecond))
	if st := f.status(r1); st.Sync.Bulk.TimedOut || st.Demotion.Sync != 0 {
		t.Fatalf("after the handshake: bulk %+v, demotion %+v; want the table received", st.Sync.Bulk, st.Demotion)
	}
}
