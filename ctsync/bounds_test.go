package ctsync

import (
	"testing"
	"time"

	"github.com/carpd/carpd/ctsync/flow"
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
	l := newMemLink(0)
	a := startNode(t, l, 0, testKey, nil)
	b := startNode(t, l, 1, testKey, func(c *Config) { c.MaxPeerFlows = 100 })
	a.run(t)
	b.run(t)
	for i := range 300 {
		a.k.put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
	}
	eventually(t, 5*time.Second, "drops counted", func() bool { return b.e.Status().Counters.DropPeerFull >= 200 })
	// Refreshes and updates of the dropped flows must not grow it either.
	for i := range 300 {
		a.k.put(tcpFlow(i, flow.TCPFinWait), flow.EventUpdate)
	}
	time.Sleep(500 * time.Millisecond)
	st := b.e.Status()
	if st.FlowsPeer != 100 || len(b.k.snapshot()) != 100 {
		t.Fatalf("peer table %d, kernel %d flows; want 100 (bound)", st.FlowsPeer, len(b.k.snapshot()))
	}
	if st.Counters.Wanted != 0 {
		t.Fatalf("asked the peer again for %d flows it has no room for", st.Counters.Wanted)
	}
}
