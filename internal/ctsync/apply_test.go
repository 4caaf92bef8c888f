package ctsync

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
	"github.com/carpd/carpd/internal/ctsync/flow"
)

// TestAcksFlowWhileKernelSlow: a receiver whose kernel takes its time to
// inject still acknowledges what it received, so the sender neither
// retransmits nor stalls; the flows land once the kernel is back.
func TestAcksFlowWhileKernelSlow(t *testing.T) {
	l := newMemLink(0)
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	gate := make(chan struct{})
	b.k.Gate = gate
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	a.run(t)
	b.run(t)
	t.Cleanup(release) // before the nodes stop (cleanups run last first)
	eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().Established && b.e.Status().Established })
	const n = 200
	for i := range n {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	eventually(t, 5*time.Second, "a's flows acknowledged while b's kernel is stuck", func() bool {
		s := a.e.Status()
		return s.FlowsSynced == n && s.FlowsPending == 0
	})
	if got := len(b.k.Snapshot()); got != 0 {
		t.Fatalf("b's kernel has %d flows while its Inject is held", got)
	}
	if got := b.e.Status().FlowsPeer; got != 0 {
		t.Fatalf("b's status counts %d of the peer's flows in its kernel, which has none yet", got)
	}
	release()
	eventually(t, 5*time.Second, "flows on b", func() bool { return converged(a.k, b.k) })
	eventually(t, 5*time.Second, "b counts them", func() bool { return b.e.Status().FlowsPeer == n })
	if r := a.e.Status().Counters.Retransmits; r != 0 {
		t.Fatalf("%d flows resent on a clean link", r)
	}
}

// TestRunStopsItsGoroutines: when Run returns, the socket reader and the
// applier it started are gone too, even with a kernel write held.
func TestRunStopsItsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	l := newMemLink(0)
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	b.k.Gate = make(chan struct{})
	a.run(t)
	b.run(t)
	a.k.Put(tcpFlow(1, flow.TCPEstablished), flow.EventNew)
	eventually(t, 5*time.Second, "the flow acknowledged", func() bool { return a.e.Status().FlowsSynced == 1 })
	a.stop()
	b.stop() // with b's applier in a held Inject: it gives up with ctx
	eventually(t, 5*time.Second, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

var _ Kernel = (*ctsynctest.Kernel)(nil)
var _ Clock = (*ctsynctest.Clock)(nil)

// TestTakeoverAdoptsQueuedFlows: flows of the peer still waiting for a
// slow kernel when this node takes over are in the dump it adopts from
// (the kernel reports no event of our own writes).
func TestTakeoverAdoptsQueuedFlows(t *testing.T) {
	l := newMemLink(0)
	a, b := startNode(t, l, 0, testKey, nil), startNode(t, l, 1, testKey, nil)
	gate := make(chan struct{})
	b.k.Gate = gate
	a.run(t)
	b.run(t)
	released := false
	t.Cleanup(func() {
		if !released {
			close(gate)
		}
	})
	const n = 50
	for i := range n {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	eventually(t, 5*time.Second, "a's flows acknowledged, b's kernel write held", func() bool {
		return a.e.Status().FlowsSynced == n && b.k.Held() > 0
	})
	took := make(chan struct{})
	go func() { b.e.Takeover(context.Background()); close(took) }()
	// Takeover waits for the kernel; one that did not would return at
	// once, its dump without the flows.
	select {
	case <-took:
	case <-time.After(100 * time.Millisecond):
	}
	released = true
	close(gate)
	<-took
	eventually(t, 5*time.Second, "b replicates the flows it took over", func() bool { return b.e.Status().FlowsLocal == n })
}

// TestSyncedOnlyOnceTableInKernel: the initial sync is over (and the
// daemon lifts the demotion) only once the peer's whole table is in our
// kernel, not when its digest matched while the kernel lags behind.
func TestSyncedOnlyOnceTableInKernel(t *testing.T) {
	l := newMemLink(0)
	a := startNode(t, l, 0, testKey, nil)
	const n = 100
	for i := range n {
		a.k.Set(tcpFlow(i, flow.TCPEstablished))
	}
	b := startNode(t, l, 1, testKey, nil)
	gate := make(chan struct{})
	b.k.Gate = gate
	a.run(t)
	b.run(t)
	released := false
	t.Cleanup(func() {
		if !released {
			close(gate)
		}
	})
	waiting := func() (w bool) {
		b.e.do(context.Background(), func() { w = b.e.bulkDone != nil })
		return w
	}
	eventually(t, 5*time.Second, "b has the digest of a's table, its kernel held", waiting)
	if b.e.Synced() || len(b.k.Snapshot()) != 0 {
		t.Fatalf("b synced %v with %d flows in its kernel while the writes are held", b.e.Synced(), len(b.k.Snapshot()))
	}
	released = true
	close(gate)
	// The first status that says synced counts those flows too (not the
	// count of an earlier tick, when they were still queued).
	var st Status
	eventually(t, 5*time.Second, "b synced", func() bool {
		for range 1000 {
			if st = b.e.Status(); st.Bulk.Synced {
				return true
			}
			time.Sleep(50 * time.Microsecond)
		}
		return false
	})
	if st.FlowsPeer != n {
		t.Fatalf("the first status that says synced has flows_from_peer %d, want %d", st.FlowsPeer, n)
	}
	if got := len(b.k.Snapshot()); got != n {
		t.Fatalf("b synced with %d of %d flows in its kernel", got, n)
	}
}
