package kernel

// Integration tests against the real kernel, each in a fresh network
// namespace (package lab). They need root: lab.Require skips them without
// it, or fails them with CARPD_REQUIRE_NETNS=1. Every socket is opened in
// the test's namespace through Config.NetNS; nothing touches the caller's
// conntrack table.

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/vip"
	"github.com/google/go-cmp/cmp"
)

// testNS returns a host in a fresh namespace and a descriptor of that
// namespace, both released at the end of the test.
func testNS(t testing.TB) (*lab.Host, int) {
	t.Helper()
	lab.Require(t)
	l, err := lab.New("ckt")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	h, err := l.Host("r")
	if err != nil {
		t.Fatal(err)
	}
	return h, nsFD(t, h)
}

// testLogger logs at debug level into the test's output.
func testLogger(t testing.TB) *logx.Logger {
	return logx.New(logx.NewTextHandler(t.Output(), &logx.HandlerOptions{Level: logx.LevelDebug}))
}

// openCT opens conntrack in namespace ns, closed at the end of the test.
func openCT(t testing.TB, ns int, cfg Config) *Conntrack {
	t.Helper()
	cfg.NetNS = ns
	if cfg.Log == nil {
		cfg.Log = testLogger(t)
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// cmpAddr compares netip.Addrs for cmp.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

var (
	ip      = netip.MustParseAddr
	lanHost = ip("192.168.1.10")
	server  = ip("198.51.100.7")
	wanAddr = ip("203.0.113.1")
)

// tcpFlow is an established TCP flow from src:sport to dst:dport whose
// replies come from rsrc:rsport to rdst:rdport.
func tcpFlow(src netip.Addr, sport uint16, dst netip.Addr, dport uint16, rsrc netip.Addr, rsport uint16, rdst netip.Addr, rdport uint16) flow.Flow {
	return flow.Flow{
		Orig:     flow.Tuple{Src: src, Dst: dst, Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport},
		Reply:    flow.Tuple{Src: rsrc, Dst: rdst, Proto: flow.ProtoTCP, SrcPort: rsport, DstPort: rdport},
		Status:   flow.StatusSeenReply | flow.StatusAssured,
		Timeout:  300,
		TCPState: flow.TCPEstablished,
	}
}

// masq is a masqueraded LAN→WAN TCP flow: orig 192.168.1.10:sport →
// 198.51.100.7:443, replies to 203.0.113.1:natPort.
func masq(sport, natPort uint16) flow.Flow {
	return tcpFlow(lanHost, sport, server, 443, server, 443, wanAddr, natPort)
}

// dumpMap dumps the table, keyed.
func dumpMap(t testing.TB, c *Conntrack) map[flow.Key]flow.Flow {
	t.Helper()
	fs, err := c.Dump(testCtx(t))
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	m := make(map[flow.Key]flow.Flow, len(fs))
	for _, f := range fs {
		m[f.Key()] = f
	}
	return m
}

// applyOK applies flows and fails the test on any error.
func applyOK(t testing.TB, c *Conntrack, flows ...flow.Flow) {
	t.Helper()
	for i, err := range c.Apply(testCtx(t), flows) {
		if err != nil {
			t.Fatalf("Apply flow %d (%v): %v", i, flows[i].Orig, err)
		}
	}
}

// natBits are the status bits the kernel sets for NAT.
const (
	statusSrcNATDone = 1 << 7
	statusDstNATDone = 1 << 8
)

// TestApplyCreate creates flows of every kind and checks what the kernel
// made of them: the NATed reply tuple, the NAT status bits, CONFIRMED,
// ASSURED, BE_LIBERAL, zone, mark, timeout.
func TestApplyCreate(t *testing.T) {
	icmpEcho := func(id, natID uint16) flow.Flow {
		return flow.Flow{
			Orig:    flow.Tuple{Src: lanHost, Dst: server, Proto: flow.ProtoICMP, SrcPort: id, DstPort: 8 << 8},
			Reply:   flow.Tuple{Src: server, Dst: wanAddr, Proto: flow.ProtoICMP, SrcPort: natID, DstPort: 0},
			Status:  flow.StatusSeenReply,
			Timeout: 30,
		}
	}
	tests := []struct {
		name       string
		f          flow.Flow
		wantStatus uint32 // besides CONFIRMED and the flow's own
	}{
		{"tcp-masquerade", masq(40000, 40000), flow.StatusSrcNAT | statusSrcNATDone | statusDstNATDone},
		{"tcp-masquerade-port", masq(40001, 61000), flow.StatusSrcNAT | statusSrcNATDone | statusDstNATDone},
		{
			"tcp-port-forward",
			// 198.51.100.7:50000 → 203.0.113.1:8080, forwarded to 192.168.1.20:80.
			tcpFlow(server, 50000, wanAddr, 8080, ip("192.168.1.20"), 80, server, 50000),
			flow.StatusDstNAT | statusSrcNATDone | statusDstNATDone,
		},
		{
			"tcp-ipv6-masquerade",
			tcpFlow(ip("fd00::10"), 40000, ip("2001:db8::7"), 443, ip("2001:db8::7"), 443, ip("2001:db8:1::1"), 41000),
			flow.StatusSrcNAT | statusSrcNATDone | statusDstNATDone,
		},
		{
			"udp-plain",
			flow.Flow{
				Orig:    flow.Tuple{Src: lanHost, Dst: server, Proto: flow.ProtoUDP, SrcPort: 5353, DstPort: 53},
				Reply:   flow.Tuple{Src: server, Dst: lanHost, Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 5353},
				Status:  flow.StatusSeenReply | flow.StatusAssured,
				Timeout: 120,
			},
			0,
		},
		{
			"udp-snat-dnat",
			flow.Flow{
				Orig:    flow.Tuple{Src: lanHost, Dst: wanAddr, Proto: flow.ProtoUDP, SrcPort: 6000, DstPort: 7000},
				Reply:   flow.Tuple{Src: ip("192.168.1.30"), Dst: ip("192.168.1.1"), Proto: flow.ProtoUDP, SrcPort: 7001, DstPort: 6001},
				Status:  flow.StatusSeenReply,
				Timeout: 60,
			},
			flow.StatusSrcNAT | flow.StatusDstNAT | statusSrcNATDone | statusDstNATDone,
		},
		{"icmp-echo-masquerade", icmpEcho(1234, 1234), flow.StatusSrcNAT | statusSrcNATDone | statusDstNATDone},
		{"icmp-echo-masquerade-id", icmpEcho(1235, 777), flow.StatusSrcNAT | statusSrcNATDone | statusDstNATDone},
		{
			"icmpv6-echo",
			flow.Flow{
				Orig:    flow.Tuple{Src: ip("2001:db8::10"), Dst: ip("2001:db8:2::7"), Proto: flow.ProtoICMPv6, SrcPort: 99, DstPort: 128 << 8},
				Reply:   flow.Tuple{Src: ip("2001:db8:2::7"), Dst: ip("2001:db8::10"), Proto: flow.ProtoICMPv6, SrcPort: 99, DstPort: 129 << 8},
				Timeout: 30,
			},
			0,
		},
		{
			"sctp-plain",
			flow.Flow{
				Orig:    flow.Tuple{Src: lanHost, Dst: server, Proto: flow.ProtoSCTP, SrcPort: 3000, DstPort: 3868},
				Reply:   flow.Tuple{Src: server, Dst: lanHost, Proto: flow.ProtoSCTP, SrcPort: 3868, DstPort: 3000},
				Timeout: 300,
			},
			0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ns := testNS(t)
			c := openCT(t, ns, Config{})
			want := tt.f
			want.Zone, want.Mark = 5, 42
			applyOK(t, c, want)

			got, ok := dumpMap(t, c)[want.Key()]
			if !ok {
				t.Fatalf("flow %v not in the dump", want.Orig)
			}
			if diff := cmp.Diff(want.Reply, got.Reply, cmpAddr); diff != "" {
				t.Errorf("reply tuple (-want +got):\n%s", diff)
			}
			wantStatus := flow.StatusConfirmed | want.Status | tt.wantStatus
			if got.Status != wantStatus {
				t.Errorf("status = %#x, want %#x", got.Status, wantStatus)
			}
			if got.Zone != want.Zone || got.Mark != want.Mark {
				t.Errorf("zone, mark = %d, %d, want %d, %d", got.Zone, got.Mark, want.Zone, want.Mark)
			}
			if got.Timeout > want.Timeout || got.Timeout+5 < want.Timeout {
				t.Errorf("timeout = %d, want about %d", got.Timeout, want.Timeout)
			}
			if want.Orig.Proto == flow.ProtoTCP {
				if got.TCPState != want.TCPState {
					t.Errorf("TCP state = %d, want %d", got.TCPState, want.TCPState)
				}
				if got.TCPFlagsOrig&flow.TCPFlagBeLiberal == 0 || got.TCPFlagsReply&flow.TCPFlagBeLiberal == 0 {
					t.Errorf("TCP flags = %#x/%#x, want BE_LIBERAL both ways", got.TCPFlagsOrig, got.TCPFlagsReply)
				}
			}
		})
	}
}

// TestApplyUpdate applies a flow again with a longer timeout and a later
// TCP state: an update, no EEXIST, same NAT.
func TestApplyUpdate(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	f := masq(40000, 61000)
	applyOK(t, c, f)
	f.Timeout, f.TCPState = 3000, flow.TCPFinWait
	f.Mark = 7
	applyOK(t, c, f)

	got := dumpMap(t, c)[f.Key()]
	if got.Timeout < 2990 || got.TCPState != flow.TCPFinWait || got.Mark != 7 {
		t.Errorf("after update: timeout %d, state %d, mark %d; want about 3000, %d, 7", got.Timeout, got.TCPState, got.Mark, flow.TCPFinWait)
	}
	if got.Reply != f.Reply || got.Status&flow.StatusSrcNAT == 0 {
		t.Errorf("after update: reply %v status %#x, want %v with SRC_NAT", got.Reply, got.Status, f.Reply)
	}
}

// TestApplyClash resolves clashes: a different flow holding our NAT
// mapping (reply tuple), and an entry with our original tuple but without
// our NAT (a tcp_loose pick-up).
func TestApplyClash(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})

	// Reply tuple: 192.168.1.99:40000 holds 203.0.113.1:40000.
	other := tcpFlow(ip("192.168.1.99"), 40000, server, 443, server, 443, wanAddr, 40000)
	applyOK(t, c, other)
	ours := masq(40000, 40000)
	applyOK(t, c, ours)

	// Original tuple: an un-NATed entry for what should be masqueraded.
	pickup := tcpFlow(lanHost, 40001, server, 443, server, 443, lanHost, 40001)
	applyOK(t, c, pickup)
	ours2 := masq(40001, 40001)
	applyOK(t, c, ours2)

	m := dumpMap(t, c)
	if _, ok := m[other.Key()]; ok {
		t.Errorf("the flow holding our NAT mapping is still there")
	}
	for _, f := range []flow.Flow{ours, ours2} {
		got, ok := m[f.Key()]
		if !ok {
			t.Errorf("%v missing", f.Orig)
			continue
		}
		if got.Reply != f.Reply {
			t.Errorf("%v: reply %v, want %v", f.Orig, got.Reply, f.Reply)
		}
	}
	if len(m) != 2 {
		t.Errorf("table holds %d flows, want 2: %v", len(m), m)
	}
}

// TestDelete deletes flows, a missing one included, in the right zone.
func TestDelete(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	a, b := masq(40000, 40000), masq(40001, 40001)
	b.Zone = 3
	applyOK(t, c, a, b)

	wrongZone := b.Key()
	wrongZone.Zone = 4
	missingFlow := masq(40002, 40002)
	missing := missingFlow.Key()
	if err := c.Delete(testCtx(t), []flow.Key{a.Key(), missing, wrongZone}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	m := dumpMap(t, c)
	if _, ok := m[a.Key()]; ok {
		t.Errorf("deleted flow still there")
	}
	if _, ok := m[b.Key()]; !ok {
		t.Errorf("flow of zone 3 deleted by a key of zone 4")
	}
	if err := c.Delete(testCtx(t), []flow.Key{b.Key()}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if m := dumpMap(t, c); len(m) != 0 {
		t.Errorf("table not empty: %v", m)
	}
}

// TestApplyInvalid: flows that cannot be injected fail alone.
func TestApplyInvalid(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	good := masq(40000, 40000)
	noTimeout := masq(40001, 40001)
	noTimeout.Timeout = 0
	mixed := masq(40002, 40002)
	mixed.Reply.Dst = ip("2001:db8::1")
	badState := masq(40003, 40003)
	badState.TCPState = 200
	errs := c.Apply(testCtx(t), []flow.Flow{good, noTimeout, mixed, badState})
	if errs[0] != nil {
		t.Errorf("good flow: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if err == nil {
			t.Errorf("bad flow %d: no error", i+1)
		}
	}
	if !errors.Is(errs[1], errNoTimeout) {
		t.Errorf("zero timeout: %v", errs[1])
	}
}

// nextEvent returns the next event about key (or any EventOverrun),
// skipping others; it fails the test after 5 s.
func nextEvent(t testing.TB, c *Conntrack, key flow.Key) flow.Event {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("Events closed while waiting for %v", key.Orig)
			}
			if ev.Type == flow.EventOverrun || ev.Flow.Key() == key {
				return ev
			}
		case <-timeout.C:
			t.Fatalf("no event for %v", key.Orig)
		}
	}
}

// noEvent checks that no event arrives for 200 ms.
func noEvent(t testing.TB, c *Conntrack) {
	t.Helper()
	select {
	case ev := <-c.Events():
		t.Errorf("unexpected event %v %v", ev.Type, ev.Flow.Orig)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestEvents sees the NEW, UPDATE and DESTROY events of flows written
// through the netlink API, by another Conntrack and, unless SkipOwnWrites,
// by the same one.
func TestEvents(t *testing.T) {
	_, ns := testNS(t)
	src := openCT(t, ns, Config{})
	quiet := openCT(t, ns, Config{SkipOwnWrites: true})
	writer := openCT(t, ns, Config{})

	f := masq(40000, 61000)
	f.Mark, f.Zone = 9, 2
	applyOK(t, writer, f)
	ev := nextEvent(t, src, f.Key())
	if ev.Type != flow.EventNew || ev.Flow.Reply != f.Reply || ev.Flow.Mark != 9 || ev.Flow.TCPState != flow.TCPEstablished {
		t.Errorf("NEW: got %v %+v", ev.Type, ev.Flow)
	}

	f.TCPState = flow.TCPFinWait
	applyOK(t, writer, f)
	ev = nextEvent(t, src, f.Key())
	if ev.Type != flow.EventUpdate || ev.Flow.TCPState != flow.TCPFinWait {
		t.Errorf("UPDATE: got %v state %d", ev.Type, ev.Flow.TCPState)
	}

	if err := writer.Delete(testCtx(t), []flow.Key{f.Key()}); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, src, f.Key())
	if ev.Type != flow.EventDestroy || ev.Flow.Reply != f.Reply {
		t.Errorf("DESTROY: got %v %+v", ev.Type, ev.Flow)
	}

	// quiet saw the same three, and none of its own writes.
	for _, want := range []flow.EventType{flow.EventNew, flow.EventUpdate, flow.EventDestroy} {
		if ev := nextEvent(t, quiet, f.Key()); ev.Type != want {
			t.Errorf("quiet: got %v, want %v", ev.Type, want)
		}
	}
	g := masq(40001, 40001)
	applyOK(t, quiet, g)
	if ev := nextEvent(t, src, g.Key()); ev.Type != flow.EventNew {
		t.Errorf("src: got %v for quiet's write, want NEW", ev.Type)
	}
	noEvent(t, quiet)
	if s := quiet.Stats(); s.Filtered == 0 {
		t.Errorf("quiet: stats %+v, want its own write filtered", s)
	}
}

// bulkFlows returns n distinct masqueraded TCP flows (n <= 50000).
func bulkFlows(n int) []flow.Flow {
	fs := make([]flow.Flow, n)
	for i := range fs {
		src := netip.AddrFrom4([4]byte{10, 20, byte(i / 250), byte(i%250 + 1)})
		fs[i] = tcpFlow(src, 30000+uint16(i%1000), server, 443, server, 443, wanAddr, 10000+uint16(i))
	}
	return fs
}

// TestApplyBulk injects 20 000 flows in one Apply and dumps them back.
func TestApplyBulk(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{Log: logx.New(logx.DiscardHandler)})
	fs := bulkFlows(20000)
	start := time.Now()
	errs := c.Apply(testCtx(t), fs)
	d := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	t.Logf("applied %d flows in %v: %.0f flows/s", len(fs), d, float64(len(fs))/d.Seconds())

	start = time.Now()
	m := dumpMap(t, c)
	t.Logf("dumped %d flows in %v", len(m), time.Since(start))
	if len(m) != len(fs) {
		t.Errorf("dump has %d flows, want %d", len(m), len(fs))
	}
	for _, f := range fs {
		if got, ok := m[f.Key()]; !ok || got.Reply != f.Reply {
			t.Fatalf("%v: in dump %v, reply %v, want %v", f.Orig, ok, got.Reply, f.Reply)
		}
	}

	// Again: 20 000 updates.
	for i := range fs {
		fs[i].Timeout = 600
	}
	start = time.Now()
	errs = c.Apply(testCtx(t), fs)
	d = time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update of flow %d: %v", i, err)
		}
	}
	t.Logf("updated %d flows in %v: %.0f flows/s", len(fs), d, float64(len(fs))/d.Seconds())
}

// TestEventOverrunSlowConsumer: a consumer that does not read while
// 20 000 flows are created gets an EventOverrun, not a silent loss.
func TestEventOverrunSlowConsumer(t *testing.T) {
	_, ns := testNS(t)
	src := openCT(t, ns, Config{EventBuffer: 16})
	sink := openCT(t, ns, Config{Log: logx.New(logx.DiscardHandler)})
	for i, err := range sink.Apply(testCtx(t), bulkFlows(20000)) {
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	// The first 16 events fit; the overrun is next.
	overrun := false
	for i := 0; i <= 16 && !overrun; i++ {
		select {
		case ev := <-src.Events():
			overrun = ev.Type == flow.EventOverrun
		case <-time.After(5 * time.Second):
			t.Fatalf("no event after %d", i)
		}
	}
	if !overrun {
		t.Fatalf("no EventOverrun among the first 17 events")
	}
	s := src.Stats()
	t.Logf("stats: %+v", s)
	if s.Dropped == 0 || s.Overruns != 1 {
		t.Errorf("stats %+v: want drops and 1 overrun", s)
	}
	if m := dumpMap(t, src); len(m) != 20000 {
		t.Errorf("resync dump has %d flows, want 20000", len(m))
	}
}

// TestEventOverrunSocket: a socket buffer too small for a burst makes the
// kernel drop events, which shows as an EventOverrun even though the
// consumer keeps up.
func TestEventOverrunSocket(t *testing.T) {
	_, ns := testNS(t)
	src := openCT(t, ns, Config{EventBuffer: 50000, SocketBuffer: 1})
	sink := openCT(t, ns, Config{Log: logx.New(logx.DiscardHandler)})
	for i, err := range sink.Apply(testCtx(t), bulkFlows(20000)) {
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
	}
	var news, overruns int
	for done := false; !done; {
		select {
		case ev := <-src.Events():
			switch ev.Type {
			case flow.EventNew:
				news++
			case flow.EventOverrun:
				overruns++
			}
		case <-time.After(500 * time.Millisecond):
			done = true
		}
	}
	s := src.Stats()
	t.Logf("NEW events %d, overruns %d, stats %+v", news, overruns, s)
	if s.KernelDrops == 0 {
		t.Fatalf("the kernel dropped no event; the test did not overrun the socket")
	}
	if overruns == 0 {
		t.Errorf("%d events lost in the kernel, no EventOverrun", s.KernelDrops)
	}
}

// watchAddrs starts the daemon's watcher of links and addresses in h's
// namespace, for Filter.Local; it stops at the end of the test.
func watchAddrs(t *testing.T, h *lab.Host) *vip.Watcher {
	t.Helper()
	var w *vip.Watcher
	if err := h.Do(func() (err error) { w, err = vip.Watch(context.Background(), nil); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// TestLocalFilter: a Filter whose Local is the daemon's watcher of the
// namespace's addresses (vip.Watcher) leaves router-local flows out, but
// keeps NATed forwarded flows that use the router's address.
func TestLocalFilter(t *testing.T) {
	h, ns := testNS(t)
	ctx := testCtx(t)
	if _, err := h.Run(ctx, "ip", "addr", "add", "10.9.0.1/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	w := watchAddrs(t, h)
	c := openCT(t, ns, Config{Filter: Filter{Local: w.IsLocal}})
	router := ip("10.9.0.1")
	fromRouter := tcpFlow(router, 40000, server, 443, server, 443, router, 40000)
	toRouter := tcpFlow(server, 40001, router, 22, router, 22, server, 40001)
	masqueraded := tcpFlow(lanHost, 40002, server, 443, server, 443, router, 40002)
	forwardedPort := tcpFlow(server, 40003, router, 8080, ip("192.168.1.20"), 80, server, 40003)
	redirected := tcpFlow(lanHost, 40004, server, 80, router, 3128, lanHost, 40004)
	applyOK(t, c, fromRouter, toRouter, masqueraded, forwardedPort, redirected)

	m := dumpMap(t, c)
	for _, tc := range []struct {
		name string
		f    flow.Flow
		keep bool
	}{
		{"from the router", fromRouter, false},
		{"to the router", toRouter, false},
		{"masqueraded", masqueraded, true},
		{"port forward", forwardedPort, true},
		{"redirected to the router", redirected, false},
	} {
		if _, ok := m[tc.f.Key()]; ok != tc.keep {
			t.Errorf("%s: in dump %v, want %v", tc.name, ok, tc.keep)
		}
	}
	// The events of the same flows pass the same filter.
	later := tcpFlow(router, 40005, server, 443, server, 443, router, 40005)
	kept := tcpFlow(lanHost, 40006, server, 443, server, 443, router, 40006)
	applyOK(t, c, later, kept)
	if ev := nextEvent(t, c, kept.Key()); ev.Type != flow.EventNew {
		t.Errorf("got %v", ev.Type)
	}

	// A new address (a CARP VIP) counts as local at once.
	vip := ip("10.9.0.2")
	if _, err := h.Run(ctx, "ip", "addr", "add", "10.9.0.2/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !c.filter.Local(vip) {
		if time.Now().After(deadline) {
			t.Fatalf("%v not local after 5 s: %v", vip, w.Addrs("lo"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRealTraffic routes a client's ping and HTTP request through a
// masquerading router, reads the router's events and dump, and injects the
// dump into a backup router's table, which then holds the same NAT.
//
//	client 10.0.0.2 ── lan ── 10.0.0.1 r 10.1.0.1 ── wan ── 10.1.0.2 server
//	                                    b (backup, no links)
func TestRealTraffic(t *testing.T) {
	n := newNATLab(t)
	client, r, backup := n.client, n.r, n.backup
	ctx := testCtx(t)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	rNS := nsFD(t, r)
	src := openCT(t, rNS, Config{Filter: Filter{MinTCPState: flow.TCPEstablished, Local: watchAddrs(t, r).IsLocal}})

	n.traffic(t)
	_, err := r.Run(ctx, "ping", "-c", "1", "-W", "2", "10.1.0.2") // router-local
	check(err)
	_, err = client.Run(ctx, "ping", "-c", "1", "-W", "2", "10.1.0.2")
	check(err)

	// Events: the client's flows, masqueraded; never the router's own.
	var sawICMP, sawTCP bool
	timeout := time.After(5 * time.Second)
	for !(sawICMP && sawTCP) {
		select {
		case ev := <-src.Events():
			f := ev.Flow
			if f.Orig.Src != ip("10.0.0.2") {
				t.Errorf("event %v of a flow not from the client: %v", ev.Type, f.Orig)
				continue
			}
			if f.Reply.Dst != ip("10.1.0.1") || f.Status&flow.StatusSrcNAT == 0 {
				t.Errorf("event %v: %v not masqueraded: reply %v status %#x", ev.Type, f.Orig, f.Reply, f.Status)
			}
			switch f.Orig.Proto {
			case flow.ProtoICMP:
				sawICMP = true
			case flow.ProtoTCP:
				if tcpRank(f.TCPState) < tcpRank(flow.TCPEstablished) {
					t.Errorf("TCP event in state %d passed MinTCPState", f.TCPState)
				}
				sawTCP = true
			}
		case <-timeout:
			t.Fatalf("events: ICMP %v, TCP %v", sawICMP, sawTCP)
		}
	}

	// Dump, inject into the backup, dump the backup.
	primary, err := src.Dump(ctx)
	check(err)
	if len(primary) < 2 {
		t.Fatalf("primary dump: %v", primary)
	}
	bk := openCT(t, nsFD(t, backup), Config{Filter: Filter{Local: NoLocalAddrs}})
	applyOK(t, bk, primary...)
	got := dumpMap(t, bk)
	for _, f := range primary {
		g, ok := got[f.Key()]
		if !ok {
			t.Errorf("%v not injected", f.Orig)
			continue
		}
		if g.Reply != f.Reply || g.Status != f.Status&^(1<<9) || g.TCPState != f.TCPState {
			t.Errorf("%v: backup has reply %v status %#x state %d, primary %v %#x %d",
				f.Orig, g.Reply, g.Status, g.TCPState, f.Reply, f.Status, f.TCPState)
		}
	}
}

// natLab is a masquerading router between a client and a server, and a
// backup router without links:
//
//	client 10.0.0.2 ── lan ── 10.0.0.1 r 10.1.0.1 ── wan ── 10.1.0.2 server
//	                                    backup
type natLab struct {
	client, r, server, backup *lab.Host
}

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	lab.Require(t)
	l, err := lab.New("ckt")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	ctx := testCtx(t)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lan, err := l.Switch("lan")
	check(err)
	wan, err := l.Switch("wan")
	check(err)
	hosts := map[string]*lab.Host{}
	for _, name := range []string{"client", "r", "server", "backup"} {
		hosts[name], err = l.Host(name)
		check(err)
	}
	n := &natLab{client: hosts["client"], r: hosts["r"], server: hosts["server"], backup: hosts["backup"]}
	_, err = l.Attach(n.client, lan, "eth0", "10.0.0.2/24")
	check(err)
	_, err = l.Attach(n.r, lan, "lan", "10.0.0.1/24")
	check(err)
	_, err = l.Attach(n.r, wan, "wan", "10.1.0.1/24")
	check(err)
	_, err = l.Attach(n.server, wan, "eth0", "10.1.0.2/24")
	check(err)
	_, err = n.client.Run(ctx, "ip", "route", "add", "default", "via", "10.0.0.1")
	check(err)
	_, err = n.r.Run(ctx, "nft", "add table ip nat; add chain ip nat post { type nat hook postrouting priority 100; }; add rule ip nat post oifname wan masquerade")
	check(err)
	return n
}

// traffic sends two pings and an HTTP request from the client to the
// server.
func (n *natLab) traffic(t *testing.T) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := n.client.Run(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.1.0.2"); err != nil {
		t.Fatal(err)
	}
	http, err := n.server.Start("python3", "-m", "http.server", "8080", "--bind", "10.1.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer http.Kill()
	for range 50 {
		if _, err = n.client.Run(ctx, "curl", "-sS", "-o", "/dev/null", "--max-time", "2", "http://10.1.0.2:8080/"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// nsFD opens h's namespace for Config.NetNS.
func nsFD(t testing.TB, h *lab.Host) int {
	t.Helper()
	f, err := os.Open(filepath.Join("/run/netns", h.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestClose: Close stops every goroutine it started, closes Events, is
// idempotent, and the methods fail afterwards.
func TestClose(t *testing.T) {
	_, ns := testNS(t)
	before := runtime.NumGoroutine()
	c, err := Open(Config{NetNS: ns, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	applyOK(t, c, masq(40000, 40000))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range c.Events() { // closed: the loop ends
	}
	if _, err := c.Dump(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Dump after Close: %v", err)
	}
	if errs := c.Apply(testCtx(t), []flow.Flow{masq(40001, 40001)}); !errors.Is(errs[0], ErrClosed) {
		t.Errorf("Apply after Close: %v", errs[0])
	}
	gone := masq(40000, 40000)
	if err := c.Delete(testCtx(t), []flow.Key{gone.Key()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	var after int
	for range 100 {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines before Open, %d after Close", before, after)
}

// TestCancel: a done context stops Dump and Apply.
func TestCancel(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Dump(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Dump: %v", err)
	}
	for i, err := range c.Apply(ctx, bulkFlows(3)) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply flow %d: %v", i, err)
		}
	}
	// The writer is still usable.
	applyOK(t, c, masq(40000, 40000))
}

// TestEventSocketReopen: when the event socket fails, the reader opens a
// new one and owes an EventOverrun for what it missed meanwhile.
func TestEventSocketReopen(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	c.mu.Lock()
	c.evConn.Close() // not through Close: a failure
	c.mu.Unlock()
	f := masq(40000, 40000)
	applyOK(t, c, f) // while there is no socket: lost
	select {
	case ev := <-c.Events():
		if ev.Type != flow.EventOverrun {
			t.Fatalf("got %v, want OVERRUN", ev.Type)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EventOverrun after the event socket failed")
	}
	g := masq(40001, 40001)
	applyOK(t, c, g)
	if ev := nextEvent(t, c, g.Key()); ev.Type != flow.EventNew {
		t.Errorf("after reopening: %v", ev.Type)
	}
	if s := c.Stats(); s.Errors == 0 || s.Overruns != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestInjectLeavesLocalEntries: Inject replaces an entry in the way only
// if the caller says it injected it; else the flow fails with
// flow.ErrLocalClash and the entry stays as it was.
func TestInjectLeavesLocalEntries(t *testing.T) {
	_, ns := testNS(t)
	c := openCT(t, ns, Config{})
	other := tcpFlow(ip("192.168.1.99"), 40000, server, 443, server, 443, wanAddr, 40000) // holds our reply tuple
	pickup := tcpFlow(lanHost, 40001, server, 443, server, 443, lanHost, 40001)           // holds our original tuple
	applyOK(t, c, other, pickup)
	ours, ours2 := masq(40000, 40000), masq(40001, 40001)
	var asked []flow.Tuple
	notOurs := func(e *flow.Flow) bool { asked = append(asked, e.Orig); return false }
	for i, err := range c.Inject(testCtx(t), []flow.Flow{ours, ours2}, notOurs) {
		if !errors.Is(err, flow.ErrLocalClash) {
			t.Errorf("flow %d: %v, want ErrLocalClash", i, err)
		}
	}
	if len(asked) != 2 {
		t.Errorf("asked about %v, want the two entries in the way", asked)
	}
	m := dumpMap(t, c)
	for _, f := range []flow.Flow{other, pickup} {
		if got, ok := m[f.Key()]; !ok || got.Reply != f.Reply {
			t.Errorf("local entry %v: %+v (present %v), want it untouched", f.Orig, got, ok)
		}
	}
	for i, err := range c.Inject(testCtx(t), []flow.Flow{ours, ours2}, func(*flow.Flow) bool { return true }) {
		if err != nil {
			t.Errorf("flow %d, entries in the way ours: %v", i, err)
		}
	}
	m = dumpMap(t, c)
	if got := m[ours2.Key()]; got.Reply != ours2.Reply {
		t.Errorf("our entry not replaced: %+v", got)
	}
}
