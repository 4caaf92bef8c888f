package kernel

import (
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
)

// newTestPump returns a pump with an out channel of capacity n, a
// 1 ms wait, the given filter and no socket.
func newTestPump(t *testing.T, n int, fl Filter) (*pump, chan flow.Event) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	out := make(chan flow.Event, n)
	return &pump{
		out:    out,
		filter: &fl,
		wait:   time.Millisecond,
		done:   done,
		log:    logx.New(logx.DiscardHandler),
		n:      new(counters),
	}, out
}

// drain returns what is on ch without waiting.
func drain(ch chan flow.Event) []flow.Event {
	var evs []flow.Event
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// portFlow is filterFlow with source port p.
func portFlow(p uint16) flow.Flow {
	return filterFlow(func(f *flow.Flow) { f.Orig.SrcPort = p })
}

// TestPumpOverrun: a full channel drops the event and owes one
// EventOverrun; until it is handed over, every event is dropped; after it,
// events flow again.
func TestPumpOverrun(t *testing.T) {
	p, out := newTestPump(t, 2, Filter{})
	for i := range 5 {
		p.handle(kernelMsg(t, flow.EventNew, portFlow(uint16(1000+i)), 0, 0))
	}
	if !p.pending {
		t.Fatal("no EventOverrun owed after overflowing the channel")
	}
	if p.flush() {
		t.Fatal("flush succeeded on a full channel")
	}
	evs := drain(out)
	if len(evs) != 2 || evs[0].Flow.Orig.SrcPort != 1000 || evs[1].Flow.Orig.SrcPort != 1001 {
		t.Fatalf("delivered %v, want the first two", evs)
	}
	// Still owed: an event now would be older than the resync.
	p.handle(kernelMsg(t, flow.EventNew, portFlow(2000), 0, 0))
	if got := drain(out); len(got) != 0 {
		t.Fatalf("event delivered while an EventOverrun is owed: %v", got)
	}
	if !p.flush() || p.pending {
		t.Fatal("flush failed with room on the channel")
	}
	p.handle(kernelMsg(t, flow.EventUpdate, portFlow(3000), 0, 0))
	evs = drain(out)
	if len(evs) != 2 || evs[0].Type != flow.EventOverrun || evs[1].Type != flow.EventUpdate || evs[1].Flow.Orig.SrcPort != 3000 {
		t.Fatalf("after flush: %v, want OVERRUN then UPDATE :3000", evs)
	}
	s := p.n.stats()
	if s.Events != 3 || s.Dropped != 4 || s.Overruns != 1 {
		t.Errorf("stats %+v, want 3 events, 4 dropped, 1 overrun", s)
	}
}

// TestPumpCoalesces: losses of every kind while an EventOverrun is owed
// yield one.
func TestPumpCoalesces(t *testing.T) {
	p, out := newTestPump(t, 1, Filter{})
	p.handle(kernelMsg(t, flow.EventNew, portFlow(1), 0, 0))
	p.handle(kernelMsg(t, flow.EventNew, portFlow(2), 0, 0)) // full: owed
	p.lose("socket overrun", nil)
	bad := kernelMsg(t, flow.EventNew, portFlow(3), 0, 0)
	bad.Data = bad.Data[:8]
	p.handle(bad)
	drain(out)
	p.flush()
	p.lose("socket overrun", nil)
	p.flush() // full again
	evs := drain(out)
	if len(evs) != 1 || evs[0].Type != flow.EventOverrun {
		t.Fatalf("got %v, want one EventOverrun", evs)
	}
	if !p.pending {
		t.Errorf("the loss after the handover is not owed")
	}
}

// TestPumpFilters: the filter, DESTROY's looser filter, and own writes.
func TestPumpFilters(t *testing.T) {
	p, out := newTestPump(t, 10, Filter{MinTCPState: flow.TCPEstablished})
	p.own = func(pid uint32) bool { return pid == 4242 }
	handshake := filterFlow(func(f *flow.Flow) { f.TCPState = flow.TCPSynSent })
	p.handle(kernelMsg(t, flow.EventNew, handshake, 0, 0))      // filtered
	p.handle(kernelMsg(t, flow.EventDestroy, handshake, 0, 0))  // kept
	p.handle(kernelMsg(t, flow.EventNew, portFlow(9), 0, 4242)) // own
	p.handle(kernelMsg(t, flow.EventNew, portFlow(9), 0, 4243)) // someone else's
	evs := drain(out)
	if len(evs) != 2 || evs[0].Type != flow.EventDestroy || evs[1].Type != flow.EventNew || evs[1].Flow.Orig.SrcPort != 9 {
		t.Fatalf("got %v", evs)
	}
	if s := p.n.stats(); s.Filtered != 2 || s.Events != 2 {
		t.Errorf("stats %+v", s)
	}
}
