package ctsync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// memLink is a pair of in-memory datagram sockets with loss injection.
type memLink struct {
	// clk, if set, is the time of every engine started on the link
	// (newClockedLink); nodes are those engines, for settle.
	clk   *ctsynctest.Clock
	nodes []*node
	mu    sync.Mutex
	loss  float64
	rnd   *rand.Rand
	ends  [2]*memConn
	// bytes counts what went over the link (IP+UDP included).
	bytes int
}

type memConn struct {
	l      *memLink
	self   *net.UDPAddr
	other  int
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	// queued counts the datagrams sent to this end that its reader has
	// not passed on yet: in in, or taken by ReadFrom until the reader
	// comes back for the next one (it has queued that one for its engine
	// by then). settle waits for it to reach 0.
	queued atomic.Int64
	taken  bool // ReadFrom returned a datagram (the reader's own)
}

func newMemLink(loss float64) *memLink {
	l := &memLink{loss: loss, rnd: rand.New(rand.NewPCG(1, 2))}
	for i := range l.ends {
		l.ends[i] = &memConn{l: l, other: 1 - i, in: make(chan []byte, 4096), closed: make(chan struct{}),
			self: &net.UDPAddr{IP: net.IPv4(10, 99, 0, byte(i+1)), Port: 7112}}
	}
	return l
}

// reopen gives end i a fresh socket, for a node that restarts (its old
// engine closed the old one).
func (l *memLink) reopen(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ends[i] = &memConn{l: l, other: 1 - i, in: make(chan []byte, 4096), closed: make(chan struct{}), self: l.ends[i].self}
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.taken {
		c.taken = false
		c.queued.Add(-1)
	}
	select {
	case p := <-c.in:
		c.taken = true
		c.l.mu.Lock()
		from := c.l.ends[c.other].self
		c.l.mu.Unlock()
		return copy(b, p), from, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *memConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.l.mu.Lock()
	drop := c.l.rnd.Float64() < c.l.loss
	c.l.bytes += len(b) + udpIPOverhead
	peer := c.l.ends[c.other]
	c.l.mu.Unlock()
	if !drop {
		peer.queued.Add(1)
		select {
		case peer.in <- append([]byte(nil), b...):
		default:
			peer.queued.Add(-1)
		}
	}
	return len(b), nil
}

func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return c.self }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

var testKey = [wire.KeyLen]byte{1, 2, 3}

type node struct {
	e      *Engine
	conn   *memConn // the engine's end of the link
	k      *ctsynctest.Kernel
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, l *memLink, i int, key [wire.KeyLen]byte, mod func(*Config)) *node {
	t.Helper()
	cfg := Config{Key: key, Name: fmt.Sprintf("n%d", i), Window: 20 * time.Millisecond,
		Refresh: time.Minute, BulkTimeout: 20 * time.Second,
		Peer: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(2 - i)}), 7112)}
	if l.clk != nil {
		cfg.Clock = l.clk
	}
	if mod != nil {
		mod(&cfg)
	}
	n := &node{k: ctsynctest.NewKernel(), done: make(chan struct{})}
	l.nodes = append(l.nodes, n)
	var err error
	l.mu.Lock()
	end := l.ends[i]
	l.mu.Unlock()
	n.conn = end
	if n.e, err = New(cfg, n.k, end); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { defer close(n.done); _ = n.e.Run(ctx) }()
	t.Cleanup(n.stop)
}

func (n *node) stop() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
		n.cancel = nil
	}
}

// syncedPair runs two nodes on a fresh link (mod, if any, applied to
// both) and waits until a's flows 0..n-1 are in b's table.
func syncedPair(t *testing.T, n int, mod func(*Config)) (*memLink, *node, *node) {
	t.Helper()
	return syncedPairOn(t, newMemLink(0), n, mod)
}

// syncedPairOn is syncedPair on l.
func syncedPairOn(t *testing.T, l *memLink, n int, mod func(*Config)) (*memLink, *node, *node) {
	t.Helper()
	a, b := startNode(t, l, 0, testKey, mod), startNode(t, l, 1, testKey, mod)
	a.run(t)
	b.run(t)
	for i := range n {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "first sync", func() bool { return converged(a.k, b.k) })
	return l, a, b
}

// tcpFlow is a masqueraded LAN client connection number i.
func tcpFlow(i int, state uint8) flow.Flow {
	orig := flow.Tuple{Src: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + i%200)}), Dst: netip.AddrFrom4([4]byte{198, 51, 100, 7}),
		Proto: flow.ProtoTCP, SrcPort: uint16(20000 + i), DstPort: 443}
	reply := orig.Inverse()
	reply.Dst = netip.AddrFrom4([4]byte{203, 0, 113, 1})
	return flow.Flow{Orig: orig, Reply: reply, TCPState: state, Timeout: 432000,
		Status: flow.StatusConfirmed | flow.StatusSrcNAT | flow.StatusSeenReply | flow.StatusAssured}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v: %s", d, what)
}

func converged(a, b *ctsynctest.Kernel) bool {
	x, y := a.Snapshot(), b.Snapshot()
	if len(x) != len(y) {
		return false
	}
	for key, f := range x {
		g, ok := y[key]
		if !ok || g.Reply != f.Reply || g.TCPState != f.TCPState {
			return false
		}
	}
	return true
}

func TestSyncLifecycle(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established && b.e.Status().Established })
	for i := 0; i < 300; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "300 flows on b", func() bool { return converged(a.k, b.k) })
	f7 := tcpFlow(7, 0)
	f := b.k.Snapshot()[f7.Key()]
	if a, p, ok := f.SNAT(); !ok || a != netip.AddrFrom4([4]byte{203, 0, 113, 1}) || p != 20007 {
		t.Fatalf("NAT lost in transit: %+v", f)
	}
	for i := 0; i < 100; i++ {
		a.k.Put(tcpFlow(i, flow.TCPFinWait), flow.EventUpdate)
	}
	for i := 200; i < 300; i++ {
		a.k.Put(tcpFlow(i, 0), flow.EventDestroy)
	}
	l.eventually(t, 5*time.Second, "updates and deletes on b", func() bool { return converged(a.k, b.k) })
	if n := len(b.k.Snapshot()); n != 200 {
		t.Fatalf("b has %d flows", n)
	}
	l.eventually(t, 5*time.Second, "all acknowledged", func() bool {
		s := a.e.Status()
		return s.FlowsSynced == 200 && s.FlowsPending == 0 && s.FlowsLocal == 200
	})
	l.eventually(t, 5*time.Second, "b synced", func() bool { return b.e.Synced() })
	st := b.e.Status()
	if st.FlowsPeer != 200 || st.Counters.DropAuth+st.Counters.DropMalformed != 0 {
		t.Fatalf("b status %+v", st)
	}
}

func TestBornAndDeadNeverSent(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, func(c *Config) { c.Window = 300 * time.Millisecond }), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established })
	l.advance(400 * time.Millisecond) // let the first window pass
	for i := 0; i < 50; i++ {
		// Being set up (not ASSURED): it waits for the window, which
		// it does not outlive. (An established one would go at once on
		// this quiet link: TestUrgentAtOnceOnQuietLink.)
		syn := tcpFlow(i, flow.TCPSynSent)
		syn.Status &^= flow.StatusAssured | flow.StatusSeenReply
		a.k.Put(syn, flow.EventNew)
		a.k.Put(tcpFlow(i, 0), flow.EventDestroy)
	}
	a.k.Put(tcpFlow(99, flow.TCPEstablished), flow.EventNew)
	l.eventually(t, 5*time.Second, "the one live flow on b", func() bool { return len(b.k.Snapshot()) == 1 })
	if n := a.e.Status().Counters.BornAndDead; n != 50 {
		t.Fatalf("born and dead: %d, want 50", n)
	}
	applied := b.k.Applied()
	if applied != 1 {
		t.Fatalf("b injected %d flows; only the live one should have crossed", applied)
	}
}

func TestBulkAtStartAndLossyCappedLink(t *testing.T) {
	l := newClockedLink()
	l.loss = 0.10
	const n = 3000
	a := startNode(t, l, 0, testKey, func(c *Config) { c.Bandwidth = 32000 }) // 256 kbit/s
	for i := 0; i < n; i++ {
		f := tcpFlow(i, flow.TCPEstablished)
		a.k.Set(f)
	}
	a.run(t)
	b := startNode(t, l, 1, testKey, func(c *Config) { c.Bandwidth = 32000 })
	b.run(t)
	start := l.clk.Now()
	l.eventually(t, 30*time.Second, "bulk completed on b", func() bool { return b.e.Synced() })
	if !converged(a.k, b.k) {
		t.Fatalf("synced but tables differ: a %d b %d", len(a.k.Snapshot()), len(b.k.Snapshot()))
	}
	st := b.e.Status()
	if st.Bulk.TimedOut || st.FlowsPeer != n {
		t.Fatalf("b: %+v", st.Bulk)
	}
	took := l.clk.Now().Sub(start)
	l.mu.Lock()
	bytes := l.bytes
	l.mu.Unlock()
	t.Logf("bulk of %d flows over 10%% loss at 256 kbit/s: %v, %d bytes on the link (%.1f B/flow), %d flows resent",
		n, took.Round(time.Millisecond), bytes, float64(bytes)/n, a.e.Status().Counters.Retransmits)
	// The cap holds: 3000 flows at ~25 B need ~2.5 s at 32 kB/s; the
	// whole transfer may not have gone faster than the cap allows.
	if rate := float64(bytes) / took.Seconds(); rate > 32000*1.5+float64(8*defaultMTU) {
		t.Fatalf("%.0f B/s over a 32000 B/s cap", rate)
	}
}

func TestWrongKeyNothingInjected(t *testing.T) {
	l := newClockedLink()
	other := testKey
	other[0] ^= 0xff
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, other, nil)
	a.run(t)
	b.run(t)
	for i := 0; i < 10; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "auth drops counted", func() bool { return b.e.Status().Counters.DropAuth >= 2 })
	l.advance(200 * time.Millisecond)
	if n := len(b.k.Snapshot()); n != 0 || b.e.Status().Established {
		t.Fatalf("wrong key: %d flows injected, established %v", n, b.e.Status().Established)
	}
}

func TestPeerRestartResends(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 100, nil)
	b.stop()
	l.advance(1100 * time.Millisecond) // the epoch is in seconds
	// b restarts with an empty kernel table (a reboot).
	l.reopen(1)
	b2 := startNode(t, l, 1, testKey, nil)
	b2.run(t)
	l.eventually(t, 10*time.Second, "resync after restart", func() bool { return b2.e.Synced() && converged(a.k, b2.k) })
	if b2.e.Status().Bulk.TimedOut {
		t.Fatal("bulk timed out")
	}
}

func TestPurgeAfterTakeover(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, func(c *Config) { c.Refresh = 5 * time.Second })
	a.run(t)
	b.run(t)
	a.k.Put(tcpFlow(1, flow.TCPEstablished), flow.EventNew)
	// Wait for both bulk handshakes too: a late BULK_REQ from b would make
	// a resend the flow after the purge.
	l.eventually(t, 10*time.Second, "flow on b, bulks over", func() bool {
		return len(b.k.Snapshot()) == 1 && a.e.Synced() && b.e.Synced() && !a.e.Status().Bulk.Serving
	})
	// Make b's copy look unconfirmed for long, as if a's DELETE was lost.
	b.e.do(context.Background(), func() {
		b.e.peer.each(func(_ uint32, p *pflow) bool {
			p.m.confirmed = l.clk.Now().Add(-time.Hour).UnixNano()
			return true
		})
		b.e.takeoverAt, b.e.purgeAt = l.clk.Now(), l.clk.Now()
	})
	l.eventually(t, 5*time.Second, "stale flow purged", func() bool { return len(b.k.Snapshot()) == 0 })
}

// BenchmarkEngineEvents: kernel events per second one engine turns into
// frames (the link is in memory; see BENCHMARKS.md for the real one).
func BenchmarkEngineEvents(b *testing.B) {
	l := newMemLink(0)
	t := &testing.T{}
	x, y := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.e.Run(ctx)
	go y.e.Run(ctx)
	for !x.e.Status().Established {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := tcpFlow(i, flow.TCPEstablished)
		f.Orig.SrcPort, f.Reply.DstPort = uint16(i), uint16(i)
		f.Orig.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.Reply.Dst = f.Orig.Src
		x.k.Emit(flow.Event{Type: flow.EventNew, Flow: f})
	}
	for x.k.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestRecordsSentCounted: records_sent counts what went out, so that it
// can be compared with the peer's records_received (it stayed 0).
func TestRecordsSentCounted(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established && b.e.Status().Established })
	const n = 300
	for i := 0; i < n; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "all acknowledged", func() bool { return a.e.Status().FlowsSynced == n })
	a.stop()
	b.stop()
	sa, sb := a.e.Status().Counters, b.e.Status().Counters
	if sa.FlowsSent < n || sb.FlowsSent == 0 {
		t.Fatalf("records sent: a %d (%d flows went), b %d", sa.FlowsSent, n, sb.FlowsSent)
	}
	// Lossless: nothing is received that was not sent.
	if sb.FlowsReceived > sa.FlowsSent || sa.FlowsReceived > sb.FlowsSent {
		t.Fatalf("a sent %d records, b received %d; b sent %d, a received %d",
			sa.FlowsSent, sb.FlowsReceived, sb.FlowsSent, sa.FlowsReceived)
	}
}

// echoKernel is a ctsynctest.Kernel that, like the real one, reports its own
// writes as events (NEW, UPDATE, DESTROY). With hold set, the events wait
// in held until release, as when the event reader lags behind.
type echoKernel struct {
	*ctsynctest.Kernel
	hmu  sync.Mutex
	hold bool
	held []flow.Event
}

func (k *echoKernel) emit(ev flow.Event) {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	if k.hold {
		k.held = append(k.held, ev)
		return
	}
	k.Emit(ev)
}

func (k *echoKernel) release() {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	for _, ev := range k.held {
		k.Emit(ev)
	}
	k.held, k.hold = nil, false
}

func (k *echoKernel) Inject(ctx context.Context, fs []flow.Flow, _ func(*flow.Flow) bool) []error {
	for _, f := range fs {
		typ := flow.EventUpdate
		if _, ok := k.Snapshot()[f.Key()]; !ok {
			typ = flow.EventNew
		}
		k.Kernel.Inject(ctx, []flow.Flow{f}, nil)
		k.emit(flow.Event{Type: typ, Flow: f})
	}
	return make([]error, len(fs))
}

func (k *echoKernel) Delete(ctx context.Context, keys []flow.Key) error {
	for _, key := range keys {
		f, ok := k.Snapshot()[key]
		k.Kernel.Delete(ctx, []flow.Key{key})
		if ok {
			k.emit(flow.Event{Type: flow.EventDestroy, Flow: f})
		}
	}
	return nil
}

// startEchoNode is startNode with an echoKernel.
func startEchoNode(t *testing.T, l *memLink, i int) (*node, *echoKernel) {
	t.Helper()
	n := startNode(t, l, i, testKey, nil)
	ek := &echoKernel{Kernel: n.k}
	n.e.k = ek
	return n, ek
}

// TestBackupDoesNotEchoPeerFlows: the flows the backup injected from the
// master come back to it as kernel events (and in its dumps); it must not
// replicate them back, or the master writes the backup's older copy over
// its live entries: TCP states went back, deleted flows came back (e2e
// TestSyncLossyLink). After a takeover they are the backup's own.
func TestBackupDoesNotEchoPeerFlows(t *testing.T) {
	l := newClockedLink()
	a := startNode(t, l, 0, testKey, nil)
	b, bk := startEchoNode(t, l, 1)
	a.run(t)
	b.run(t)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established && b.e.Status().Established })
	const n = 200
	for i := 0; i < n; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "flows on b", func() bool { return converged(a.k, b.k) })
	for i := 0; i < 100; i++ {
		a.k.Put(tcpFlow(i, flow.TCPFinWait), flow.EventUpdate)
	}
	for i := 150; i < n; i++ {
		a.k.Put(tcpFlow(i, 0), flow.EventDestroy)
	}
	l.eventually(t, 5*time.Second, "updates and deletes on b", func() bool { return converged(a.k, b.k) })
	// b's refresh and overrun path: a dump of its table.
	b.e.do(context.Background(), func() { _ = b.e.resyncFromKernel(context.Background()) })
	l.advance(300 * time.Millisecond)
	applied := a.k.Applied()
	if sa, sb := a.e.Status(), b.e.Status(); applied != 0 || sa.FlowsPeer != 0 || sb.FlowsLocal != 0 {
		t.Fatalf("b sent a's flows back: a injected %d flows, holds %d of b's; b replicates %d", applied, sa.FlowsPeer, sb.FlowsLocal)
	}
	if got := len(a.k.Snapshot()); got != 150 || !converged(a.k, b.k) {
		t.Fatalf("a holds %d flows, want 150", got)
	}

	// A DELETE that overtakes the events of b's own writes: the late NEW
	// event must not make b send the flow back to a.
	bk.hmu.Lock()
	bk.hold = true
	bk.hmu.Unlock()
	late := tcpFlow(500, flow.TCPEstablished)
	a.k.Put(late, flow.EventNew)
	l.eventually(t, 5*time.Second, "late flow on b", func() bool { _, ok := b.k.Snapshot()[late.Key()]; return ok })
	l.advance(100 * time.Millisecond) // a window: a sends the DELETE in another frame
	a.k.Put(late, flow.EventDestroy)
	l.eventually(t, 5*time.Second, "late flow gone from b", func() bool { _, ok := b.k.Snapshot()[late.Key()]; return !ok })
	l.advance(300 * time.Millisecond) // late, but well within peerGoneFor
	bk.hmu.Lock()
	for len(bk.held) > 1 { // the NEW now, the DESTROY after a flush
		bk.Emit(bk.held[0])
		bk.held = bk.held[1:]
	}
	bk.hmu.Unlock()
	l.advance(200 * time.Millisecond)
	bk.release()
	l.advance(200 * time.Millisecond)
	if _, ok := a.k.Snapshot()[late.Key()]; ok || b.e.Status().FlowsLocal != 0 {
		t.Fatalf("the deleted flow came back to a (b replicates %d flows)", b.e.Status().FlowsLocal)
	}
	applied = a.k.Applied()
	if applied != 0 {
		t.Fatalf("a injected %d flows from b", applied)
	}

	// b takes over: a's flows in its kernel are its own now.
	b.e.Takeover(context.Background())
	l.eventually(t, 5*time.Second, "b replicating the flows it took over", func() bool {
		return b.e.Status().FlowsLocal == 150 && b.e.Status().FlowsSynced == 150
	})
}

// TestIdleLinkQuiet: two idle engines exchange keepalives, not an endless
// volley of acknowledgements (found by make bench-sync: 40 datagrams/s).
func TestIdleLinkQuiet(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	l.eventually(t, 5*time.Second, "session up and synced", func() bool { return a.e.Synced() && b.e.Synced() })
	l.advance(time.Second) // let the bulk handshakes settle
	before := a.e.Status().Counters.FramesSent + b.e.Status().Counters.FramesSent
	l.advance(3 * time.Second)
	after := a.e.Status().Counters.FramesSent + b.e.Status().Counters.FramesSent
	// At most a keepalive and its acknowledgement per side in 3 s.
	if n := after - before; n > 4 {
		t.Fatalf("%d frames in 3 idle seconds", n)
	}
}

// TestNothingSentToSilentPeer: flows are not sent (and resent at every
// retransmission timeout) to a peer silent for peerDeadAfter, as after a
// takeover from a crashed master, when the whole adopted table is dirty;
// they go once it is back.
func TestNothingSentToSilentPeer(t *testing.T) {
	l := newClockedLink()
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	for i := 0; i < 100; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	// Wait for b's bulk handshake to be over too: a late BULK_REQ would
	// rightly mark a's whole table for resending.
	l.eventually(t, 10*time.Second, "first sync", func() bool {
		return converged(a.k, b.k) && a.e.Status().FlowsSynced == 100 && b.e.Synced() && !a.e.Status().Bulk.Serving
	})
	b.stop()
	a.e.do(context.Background(), func() { a.e.lastRecv = l.clk.Now().Add(-peerDeadAfter - time.Second) })
	before := a.e.Status().Counters.FlowsSent
	for i := 100; i < 150; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.advance(1500 * time.Millisecond) // more than a retransmission timeout
	st := a.e.Status()
	// Nothing goes to the silent peer. The 50 new flows wait; flows whose
	// last frame went unacknowledged when the peer died wait too.
	if sent := st.Counters.FlowsSent - before; sent != 0 || st.FlowsPending < 50 {
		t.Fatalf("to a silent peer: %d records sent, %d flows pending (want 0 sent, >= 50 pending)", sent, st.FlowsPending)
	}
	l.advance(1100 * time.Millisecond) // the epoch is in seconds
	l.reopen(1)
	b2 := startNode(t, l, 1, testKey, nil)
	b2.run(t)
	l.eventually(t, 10*time.Second, "everything on the restarted peer", func() bool { return converged(a.k, b2.k) && len(b2.k.Snapshot()) == 150 })
}

// TestAckCoversNewestFrames: frames are never resent under their number,
// so after a loss Cum stays below it for good and only the SACK ranges
// acknowledge. They must cover the newest frames, however many were lost
// before and however long the session: with the oldest 16 ranges (and no
// room above 4096 numbers) nothing new was acknowledged any more, every
// flow was resent at every timeout and updates starved behind them (e2e
// TestSyncLossyLink: a backup stuck with 949 stale states after 60 s).
func TestAckCoversNewestFrames(t *testing.T) {
	n := startNode(t, newMemLink(0), 0, testKey, nil) // not run: its state is ours
	e := n.e
	acked := func(pn uint64) bool {
		r := e.ack()
		a := r.Ack
		if err := (&wire.Encoder{}).Append(&r); err != nil {
			t.Fatalf("ack does not encode: %v (%+v)", err, a)
		}
		if pn < a.Cum {
			return true
		}
		for _, rg := range a.Ranges {
			if pn >= rg.First && pn <= rg.Last {
				return true
			}
		}
		return false
	}
	// 10 % loss: a gap every 10 frames.
	for pn := uint64(0); pn < 1000; pn++ {
		if pn%10 != 5 {
			e.received(pn)
		}
	}
	if r := e.ack(); r.Ack.Cum != 5 || !acked(999) || !acked(990) || acked(995) {
		t.Fatalf("after 100 losses: ack %+v", r.Ack)
	}
	// A long session after one loss.
	for pn := uint64(1000); pn < 20000; pn++ {
		e.received(pn)
	}
	if !acked(19999) || len(e.recvAbove) > maxRecvAbove+1 {
		t.Fatalf("after 19000 more frames: newest not acknowledged (%d numbers kept)", len(e.recvAbove))
	}
}

// TestLossyLinkManyFrames: over 10 % loss, a table of many frames (far
// more than 16 losses) and then updates of every flow converge, and the
// retransmissions stay a fraction of the flows.
func TestLossyLinkManyFrames(t *testing.T) {
	l := newMemLink(0.10)
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	a.run(t)
	b.run(t)
	eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established && b.e.Status().Established })
	const n = 10000
	for i := 0; i < n; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	eventually(t, 20*time.Second, "table on b", func() bool { return converged(a.k, b.k) })
	for i := 0; i < n; i++ {
		a.k.Put(tcpFlow(i, flow.TCPFinWait), flow.EventUpdate)
	}
	eventually(t, 20*time.Second, "updates on b", func() bool { return converged(a.k, b.k) })
	eventually(t, 10*time.Second, "all acknowledged", func() bool { return a.e.Status().FlowsSynced == n })
	if r := a.e.Status().Counters.Retransmits; r > n {
		t.Fatalf("%d flows resent for %d sent twice over 10 %% loss", r, n)
	}
	t.Logf("%d flows resent", a.e.Status().Counters.Retransmits)
}

// TestRestartedBackupDoesNotEchoPeerFlows: a carpd restarted on the backup
// finds in its kernel the flows its predecessor injected from the master,
// and a few the master does not have. The master's own flows must not go
// back to it; the others are the backup's own and are sent (none is
// deleted from its kernel).
func TestRestartedBackupDoesNotEchoPeerFlows(t *testing.T) {
	l := newMemLink(0)
	// a, the master, has been running: it gave up waiting for a peer's
	// table and owns its flows.
	a := startNode(t, l, 0, testKey, func(c *Config) { c.BulkTimeout = 100 * time.Millisecond })
	b := startNode(t, l, 1, testKey, nil)
	for i := range 50 {
		f := tcpFlow(i, flow.TCPEstablished)
		a.k.Set(f)
		b.k.Set(f)
	}
	for i := 100; i < 110; i++ {
		f := tcpFlow(i, flow.TCPEstablished)
		b.k.Set(f)
	}
	a.run(t)
	eventually(t, 5*time.Second, "a alone, synced (timed out)", func() bool { return a.e.Synced() })
	b.run(t)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); !cond() && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
		if !cond() {
			t.Fatalf("timed out: %s\na %+v\nb %+v", what, a.e.Status(), b.e.Status())
		}
	}
	waitFor("both synced, b holding a's 50 flows", func() bool {
		sa, sb := a.e.Status(), b.e.Status()
		return sa.Bulk.Synced && sb.Bulk.Synced && !sa.Bulk.Serving && sb.FlowsPeer == 50
	})
	waitFor("b's own 10 flows replicated", func() bool {
		sb := b.e.Status()
		return sb.FlowsLocal == 10 && sb.FlowsSynced == 10 && sb.FlowsPending == 0
	})
	applied := a.k.Applied()
	if st := a.e.Status(); st.FlowsPeer != 10 || applied != 10 {
		t.Errorf("a took %d flows from b (%d applied to its kernel), want b's own 10", st.FlowsPeer, applied)
	}
	if n := len(b.k.Snapshot()); n != 60 {
		t.Errorf("b's kernel holds %d flows, want all 60", n)
	}
}

// dropPeerFlow takes the peer's flow f out of n's engine and kernel, as if
// it had been lost.
func dropPeerFlow(t *testing.T, n *node, f flow.Flow) {
	t.Helper()
	found := false
	n.e.do(context.Background(), func() {
		if slot, ok := n.e.peer.lookup(keyOf(f.Key())); ok {
			n.e.removePeer(slot)
			found = true
		}
	})
	if !found {
		t.Fatalf("%v is not in the peer table", f.Orig)
	}
	n.k.Remove(f.Key())
}

// TestWantRepairsMissingFlow: the backup lost a flow (here: taken out of
// its table and kernel by hand); the master's next refresh names it, the
// backup asks for it (WANT), the master sends it again.
func TestWantRepairsMissingFlow(t *testing.T) {
	fast := func(c *Config) { c.Refresh = 300 * time.Millisecond }
	l, a, b := syncedPairOn(t, newClockedLink(), 20, fast)
	l.eventually(t, 5*time.Second, "all acknowledged", func() bool { return a.e.Status().FlowsSynced == 20 })
	dropPeerFlow(t, b, tcpFlow(5, 0))
	l.eventually(t, 5*time.Second, "flow 5 back on b", func() bool {
		return converged(a.k, b.k) && b.e.Status().FlowsPeer == 20
	})
	sa, sb := a.e.Status(), b.e.Status()
	if sb.Counters.Wanted == 0 || sa.Counters.Repaired == 0 {
		t.Fatalf("wanted %d, repaired %d, b holds %d", sb.Counters.Wanted, sa.Counters.Repaired, sb.FlowsPeer)
	}
}

// TestStalePeerFlowPurged: the master lost a flow without a DELETE (here:
// taken out of its table by hand); it stops refreshing it, and after
// staleRefreshes periods the backup deletes it, and only it.
func TestStalePeerFlowPurged(t *testing.T) {
	fast := func(c *Config) { c.Refresh = 100 * time.Millisecond }
	l, a, b := syncedPairOn(t, newClockedLink(), 10, fast)
	f3 := tcpFlow(3, 0)
	a.e.do(context.Background(), func() {
		if slot, ok := a.e.local.lookup(keyOf(f3.Key())); ok {
			a.e.local.remove(slot)
		}
	})
	a.k.Remove(f3.Key())
	l.eventually(t, 5*time.Second, "flow 3 gone from b", func() bool {
		return converged(a.k, b.k) && b.e.Status().FlowsPeer == 9
	})
	if st := b.e.Status(); st.Counters.PurgedStale != 1 {
		t.Fatalf("b purged %d, holds %d", st.Counters.PurgedStale, st.FlowsPeer)
	}
	// Refreshes keep the live ones: nothing else goes.
	l.advance(8 * 100 * time.Millisecond)
	if n := len(b.k.Snapshot()); n != 9 {
		t.Fatalf("b holds %d flows, want the 9 live ones", n)
	}
}

// TestOrphansPurgedAfterPeerRestart: the master restarts; three of its
// flows died meanwhile. The backup asks the new session for its table and
// deletes what it no longer has.
func TestOrphansPurgedAfterPeerRestart(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 10, nil)
	a.stop()
	l.advance(1100 * time.Millisecond) // the epoch is in seconds
	l.reopen(0)
	a2 := startNode(t, l, 0, testKey, nil)
	for i := range 7 {
		f := tcpFlow(i, flow.TCPEstablished)
		a2.k.Set(f)
	}
	a2.run(t)
	l.eventually(t, 10*time.Second, "b down to the 7 live flows", func() bool {
		return converged(a2.k, b.k) && b.e.Status().FlowsPeer == 7
	})
	if st := b.e.Status(); st.Counters.PurgedStale != 3 {
		t.Fatalf("b purged %d flows, want 3", st.Counters.PurgedStale)
	}
}

// TestUrgentAtOnceOnQuietLink: the coalescing policy, on the fake clock
// (no time passes unless the test moves it). A new established flow on a
// quiet link goes at once, in a frame of its own; flows that come while
// a frame went less than urgentWindow ago wait for it and share one
// frame; a flow being set up waits for the window.
func TestUrgentAtOnceOnQuietLink(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up and synced", func() bool { return a.e.Synced() && b.e.Synced() })
	l.advance(time.Second) // the bulk handshakes are over, the link quiet
	frames := func() uint64 { return a.e.Status().Counters.FramesSent }
	f0 := frames()
	a.k.Put(tcpFlow(0, flow.TCPEstablished), flow.EventNew)
	l.settle()
	if got := len(b.k.Snapshot()); got != 1 || frames()-f0 != 1 {
		t.Fatalf("a new established flow on a quiet link, no time passed: %d flows on the peer, %d frames (want 1, 1)", got, frames()-f0)
	}
	// A burst right after: a frame just went, so the burst coalesces.
	f0 = frames()
	for i := 1; i <= 20; i++ {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.settle()
	if got := len(b.k.Snapshot()); got != 1 || frames() != f0 {
		t.Fatalf("a burst just after a frame went: %d flows on the peer, %d frames (want 1, 0)", got, frames()-f0)
	}
	l.advance(urgentWindow)
	if got := len(b.k.Snapshot()); got != 21 || frames()-f0 != 1 {
		t.Fatalf("urgentWindow later: %d flows on the peer, %d frames (want 21 in 1)", got, frames()-f0)
	}
	// Quiet again: a flow alone goes at once; one that follows it within
	// aloneAfter (here 30 ms: more than urgentWindow) is not alone and
	// waits urgentWindow.
	l.advance(time.Second)
	f0 = frames()
	a.k.Put(tcpFlow(22, flow.TCPEstablished), flow.EventNew)
	l.settle()
	l.advance(30 * time.Millisecond)
	a.k.Put(tcpFlow(23, flow.TCPEstablished), flow.EventNew)
	l.settle()
	if got := len(b.k.Snapshot()); got != 22 || frames()-f0 != 1 {
		t.Fatalf("a flow 30 ms after one that went at once: %d flows on the peer, %d frames (want 22 in 1)", got, frames()-f0)
	}
	l.advance(urgentWindow)
	if got := len(b.k.Snapshot()); got != 23 {
		t.Fatalf("urgentWindow later: %d flows on the peer, want 23", got)
	}
	// Quiet again, then a burst the engine takes in at once (it was
	// busy): not alone, it waits and shares a frame.
	l.advance(time.Second)
	f0 = frames()
	a.e.do(context.Background(), func() {
		for i := 24; i < 29; i++ {
			a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
		}
	})
	l.settle()
	if got := len(b.k.Snapshot()); got != 23 || frames() != f0 {
		t.Fatalf("a burst after a quiet second went at once: %d flows on the peer, %d frames", got, frames()-f0)
	}
	l.advance(urgentWindow)
	if got := len(b.k.Snapshot()); got != 28 || frames()-f0 != 1 {
		t.Fatalf("urgentWindow later: %d flows on the peer, %d frames (want 28 in 1)", got, frames()-f0)
	}
	// Quiet again: a flow being set up is not urgent.
	l.advance(time.Second)
	f0 = frames()
	syn := tcpFlow(30, flow.TCPSynSent)
	syn.Status &^= flow.StatusAssured | flow.StatusSeenReply
	a.k.Put(syn, flow.EventNew)
	l.settle()
	if got := len(b.k.Snapshot()); got != 28 || frames() != f0 {
		t.Fatalf("a SYN_SENT flow went at once (%d flows on the peer, %d frames)", got, frames()-f0)
	}
}

// TestUrgentWaitsUnderCap: with the byte cap out of tokens, urgent work
// coalesces instead of going at once.
func TestUrgentWaitsUnderCap(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, func(c *Config) { c.Bandwidth = 10000 })
	l.eventually(t, 5*time.Second, "session up and synced", func() bool { return a.e.Synced() && b.e.Synced() })
	l.advance(time.Second)
	a.e.do(context.Background(), func() { a.e.lim.ReserveN(l.clk.Now(), a.e.lim.Burst()) })
	f0 := a.e.Status().Counters.FramesSent
	a.k.Put(tcpFlow(0, flow.TCPEstablished), flow.EventNew)
	l.settle()
	if got := len(b.k.Snapshot()); got != 0 || a.e.Status().Counters.FramesSent != f0 {
		t.Fatalf("under a spent cap: %d flows on the peer at once", got)
	}
	l.eventually(t, 2*time.Second, "the flow once tokens are back", func() bool { return len(b.k.Snapshot()) == 1 })
}

// TestShortFlowBytesBusyLink: at 500 new flows/s, each established and
// closed within a millisecond or two (a short connection), the link
// carries at most 40 B per flow in both directions, datagram overhead
// and acknowledgements included: sending urgent work at once must not
// cost a busy link its coalescing (#14: the immediate send of every
// first flow after a frame made it 39-43 B in make bench-sync, from 32-38).
func TestShortFlowBytesBusyLink(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, func(c *Config) { c.Window = 50 * time.Millisecond })
	l.eventually(t, 5*time.Second, "session up and synced", func() bool { return a.e.Synced() && b.e.Synced() })
	l.advance(time.Second)
	const n, life = 400, 50 // flows; a flow is destroyed life flows (100 ms) after it opened
	short := func(i int, state uint8) flow.Flow {
		f := tcpFlow(i, state)
		f.Orig.Src = netip.AddrFrom4([4]byte{192, 168, 2 + byte(i/250), byte(1 + i%250)})
		f.Reply.Dst = f.Orig.Src
		return f
	}
	l.mu.Lock()
	bytes0 := l.bytes
	l.mu.Unlock()
	fr0 := a.e.Status().Counters.FramesSent
	start := l.clk.Now()
	for i := 0; i < n+life; i++ {
		if i < n {
			a.k.Put(short(i, flow.TCPEstablished), flow.EventNew)
		}
		l.advance(time.Millisecond)
		if i < n {
			a.k.Put(short(i, flow.TCPTimeWait), flow.EventUpdate)
		}
		if j := i - life; j >= 0 {
			a.k.Put(short(j, 0), flow.EventDestroy)
		}
		l.advance(time.Millisecond)
	}
	l.advance(time.Second) // the last DELETEs and their acknowledgements
	l.eventually(t, 5*time.Second, "every flow gone on both sides", func() bool {
		return len(b.k.Snapshot()) == 0 && a.e.Status().FlowsLocal == 0
	})
	l.mu.Lock()
	per := float64(l.bytes-bytes0) / n
	l.mu.Unlock()
	frames := a.e.Status().Counters.FramesSent - fr0
	t.Logf("%.1f B per short flow at 500 flows/s (IP and UDP headers included, both directions); %d frames from a", per, frames)
	if per > 40 {
		t.Errorf("%.1f B per short flow on a busy link, over 40", per)
	}
	// The flows share frames: each closes before its urgent flush would
	// go, so they ride the window's flushes, at most one per window (plus
	// a keepalive or two). A frame at once for the first flow after each
	// urgent flush (not alone: the previous came 2 ms before) made it 52.
	d := l.clk.Now().Sub(start)
	if max := uint64(d/(50*time.Millisecond) + 4); frames > max {
		t.Errorf("%d frames from a in %v of a busy link, want at most %d", frames, d, max)
	}
}
