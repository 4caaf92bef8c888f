package ctsync

import (
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// TestRecvQueueBounded: datagrams wait for the engine before they are
// authenticated, so what one may cost is bounded: a datagram larger than
// any frame is dropped unread and counted, and the queue holds at most
// recvQueueLen frames of at most maxDatagram bytes.
func TestRecvQueueBounded(t *testing.T) {
	l := newMemLink(0)
	n := startNode(t, l, 1, testKey, nil)
	// The reader alone, without Run: nothing takes frames off the queue,
	// as when the engine is busy injecting a burst.
	n.e.wg.Add(1)
	go n.e.read()
	end := l.ends[1]
	const oversize, flood = 1000, 3000
	for range oversize {
		end.in <- make([]byte, 16<<10)
	}
	eventually(t, 5*time.Second, "oversize datagrams counted", func() bool {
		return n.e.Status().Counters.DropOversize == oversize
	})
	for range flood {
		end.in <- make([]byte, defaultMTU)
	}
	eventually(t, 5*time.Second, "the flood read", func() bool { return len(end.in) == 0 })
	eventually(t, 5*time.Second, "queue drops counted", func() bool {
		return n.e.Status().Counters.DropQueue == flood-recvQueueLen
	})
	end.Close()
	n.e.wg.Wait()
	queued, bytes := len(n.e.recv), 0
	for len(n.e.recv) > 0 {
		bytes += len(<-n.e.recv)
	}
	if queued != recvQueueLen || bytes > recvQueueLen*maxDatagram {
		t.Fatalf("%d frames, %d bytes queued; bound %d frames, %d bytes", queued, bytes, recvQueueLen, recvQueueLen*maxDatagram)
	}
}

// TestPeerTableBounded: the peer's flows beyond MaxPeerFlows are dropped
// and counted, not kept (and not asked for again).
func TestPeerTableBounded(t *testing.T) {
	l := newClockedLink()
	a := startNode(t, l, 0, testKey, nil)
	b := startNode(t, l, 1, testKey, func(c *Config) { c.MaxPeerFlows = 100 })
	a.run(t)
	b.run(t)
	for i := range 300 {
		a.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	l.eventually(t, 5*time.Second, "drops counted", func() bool { return b.e.Status().Counters.DropPeerFull >= 200 })
	// Refreshes and updates of the dropped flows must not grow it either.
	for i := range 300 {
		a.k.Put(tcpFlow(i, flow.TCPFinWait), flow.EventUpdate)
	}
	l.advance(500 * time.Millisecond)
	st := b.e.Status()
	if st.FlowsPeer != 100 || len(b.k.Snapshot()) != 100 {
		t.Fatalf("peer table %d, kernel %d flows; want 100 (bound)", st.FlowsPeer, len(b.k.Snapshot()))
	}
	if st.Counters.Wanted != 0 {
		t.Fatalf("asked the peer again for %d flows it has no room for", st.Counters.Wanted)
	}
}

// TestRefusedFlowNeverTouchesKernel: a flow of the peer our filter refuses
// is counted, not injected, and its DELETE does not delete the entry of
// ours with the same tuple; its refreshes are not asked for again.
func TestRefusedFlowNeverTouchesKernel(t *testing.T) {
	l := newClockedLink()
	a := startNode(t, l, 0, testKey, nil)
	b := startNode(t, l, 1, testKey, func(c *Config) {
		c.Admit = func(f *flow.Flow) flow.Refusal {
			if f.Zone != 0 {
				return flow.RefusedZone
			}
			return flow.Accepted
		}
		c.MaxTimeout = func(*flow.Flow) uint32 { return 7440 }
	})
	refused, ok := tcpFlow(1, flow.TCPEstablished), tcpFlow(2, flow.TCPEstablished)
	refused.Zone = 7
	mine := refused
	mine.Reply.Dst = mine.Orig.Src // ours: not NATed
	b.k.Set(mine)                  // in b's kernel, no event: b does not replicate it
	a.run(t)
	b.run(t)
	a.k.Put(refused, flow.EventNew)
	a.k.Put(ok, flow.EventNew)
	l.eventually(t, 5*time.Second, "refusal counted, the other injected", func() bool {
		_, in := b.k.Snapshot()[ok.Key()]
		return in && b.e.Status().Counters.RefusedZone == 1
	})
	if got := b.k.Snapshot()[ok.Key()].Timeout; got != 7440 || b.e.Status().Counters.Clamped != 1 {
		t.Fatalf("timeout %d (clamped %d), want 7440 (1)", got, b.e.Status().Counters.Clamped)
	}
	a.k.Put(refused, flow.EventDestroy)
	a.k.Put(ok, flow.EventDestroy)
	l.eventually(t, 5*time.Second, "the other deleted", func() bool {
		_, in := b.k.Snapshot()[ok.Key()]
		return !in
	})
	if got, in := b.k.Snapshot()[mine.Key()]; !in || got.Reply != mine.Reply {
		t.Fatalf("our entry with the refused flow's tuple: %+v (present %v)", got, in)
	}
	l.eventually(t, 2*time.Second, "no flow of the peer left", func() bool { return b.e.Status().FlowsPeer == 0 })
	if n := b.e.Status().Counters.Wanted; n != 0 {
		t.Fatalf("asked the peer again for %d flows", n)
	}
}
