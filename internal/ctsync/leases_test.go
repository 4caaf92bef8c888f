package ctsync

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/leases"
)

func testLease(i int, exp uint32) leases.Lease {
	mac := string([]byte{0x52, 0x54, 0, 0, byte(i >> 8), byte(i)})
	return leases.Lease{Expiry: exp, Addr: netip.AddrFrom4([4]byte{192, 168, byte(1 + i>>8), byte(i)}), HWType: 1, HW: mac,
		Host: "host-" + string(rune('a'+i%26)), ClientID: "\x01" + mac}
}

// peerLeases applies what n received to s.
func peerLeases(n *node, s leases.Set) {
	for _, ev := range n.e.LeaseEvents() {
		s.Apply(ev)
	}
}

func sameSet(a, b leases.Set) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestLeasesExchanged: the bulk at session start carries the whole set;
// then one change is one event; over a lossy link every event arrives
// (acknowledged, sent again); a release removes; frames with a
// malformed lease are refused and counted.
func TestLeasesExchanged(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	local := leases.Set{}
	for i := range 1000 {
		ls := testLease(i, 1_800_003_600)
		local[ls.Addr] = ls
	}
	copySet := func() leases.Set {
		c := make(leases.Set, len(local))
		for k, v := range local {
			c[k] = v
		}
		return c
	}
	bytes0 := a.e.Status().Counters.BytesSent
	a.e.SetLeases(copySet())
	got := leases.Set{}
	l.eventually(t, 5*time.Second, "1 000 leases on b", func() bool { peerLeases(b, got); return sameSet(got, local) })
	bulk := a.e.Status().Counters.BytesSent - bytes0
	t.Logf("bulk of 1 000 leases: %d bytes on the link (%.1f B/lease)", bulk, float64(bulk)/1000)
	if bulk > 64_000 {
		t.Errorf("bulk of 1 000 leases took %d bytes, over 64 KB", bulk)
	}

	// One renewal, one release: two events, nothing else.
	sent0 := a.e.LeaseStatus().Sent
	r := local[testLease(5, 0).Addr]
	r.Expiry += 600
	local[r.Addr] = r
	delete(local, testLease(6, 0).Addr)
	a.e.SetLeases(copySet())
	l.eventually(t, 2*time.Second, "renewal and release on b", func() bool { peerLeases(b, got); return sameSet(got, local) })
	if n := a.e.LeaseStatus().Sent - sent0; n != 2 {
		t.Errorf("%d lease events sent for a renewal and a release, want 2", n)
	}

	// 30 % loss: 1 000 renewals all arrive.
	l.mu.Lock()
	l.loss = 0.3
	l.mu.Unlock()
	for i := range 1000 {
		r, ok := local[testLease(i, 0).Addr]
		if !ok {
			continue
		}
		r.Expiry += 60
		local[r.Addr] = r
	}
	a.e.SetLeases(copySet())
	l.eventually(t, 30*time.Second, "1 000 renewals over 30% loss", func() bool { peerLeases(b, got); return sameSet(got, local) })
	if a.e.Status().Counters.Retransmits == 0 {
		t.Error("nothing sent again over a lossy link")
	}
	l.mu.Lock()
	l.loss = 0
	l.mu.Unlock()

	// A malformed and an oversized lease record: refused and counted.
	for _, payload := range [][]byte{
		{0x11, 0x0b, 0x80, 0, 0, 0, 1, 10, 0, 0, 1, 1, 0}, // reserved flag
		{0x11, 0xab, 0x02}, // body of 299 bytes
	} {
		a.e.do(t.Context(), func() { a.e.send(payload, a.e.cfg.Clock.Now(), false) })
	}
	l.settle()
	st := b.e.LeaseStatus()
	if st.Refused["malformed"] != 1 || st.Refused["oversized"] != 1 {
		t.Errorf("refused %v, want one malformed and one oversized", st.Refused)
	}
	if st.Received < 1002 {
		t.Errorf("b counted %d events received", st.Received)
	}
	if pl := a.e.LeaseStatus(); pl.Local != len(local) {
		t.Errorf("a's local count %d, want %d", pl.Local, len(local))
	}
}

// TestLeaseEventBytes measures one lease event on the link, alone in its
// frame and in a burst that shares frames.
func TestLeaseEventBytes(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	local := leases.Set{}
	set := func() {
		c := make(leases.Set, len(local))
		for k, v := range local {
			c[k] = v
		}
		a.e.SetLeases(c)
	}
	got := leases.Set{}
	measure := func(n, from int) float64 {
		frames0, bytes0 := a.e.Status().Counters.FramesSent, a.e.Status().Counters.BytesSent
		for i := from; i < from+n; i++ {
			ls := testLease(i, 1_800_003_600)
			local[ls.Addr] = ls
		}
		set()
		l.eventually(t, 5*time.Second, "events on b", func() bool { peerLeases(b, got); return sameSet(got, local) })
		c := a.e.Status().Counters
		// Only the lease frames: acks a sends of b's frames are none
		// (b sends only acks, which elicit nothing).
		t.Logf("%d lease events: %d frames, %d bytes", n, c.FramesSent-frames0, c.BytesSent-bytes0)
		return float64(c.BytesSent-bytes0) / float64(n)
	}
	one := measure(1, 0)
	burst := measure(40, 1)
	t.Logf("lease event: %.1f B alone in its frame, %.1f B in a burst of 40", one, burst)
	if burst > 64 {
		t.Errorf("%.1f B per lease event in a burst, over 64", burst)
	}
}

// TestLeasesNotEchoed: the leases b merges from a and hands back in its
// own set do not go back to a; a lease b changes does.
func TestLeasesNotEchoed(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	set := leases.Set{}
	for i := range 10 {
		ls := testLease(i, 1_800_003_600)
		set[ls.Addr] = ls
	}
	a.e.SetLeases(leases.SetOf(set.Sorted()))
	got := leases.Set{}
	l.eventually(t, 5*time.Second, "a's leases on b", func() bool { peerLeases(b, got); return sameSet(got, set) })
	// b's file without them (b is master: its dnsmasq owns the file, the
	// peer's leases are not written): no release of a's leases.
	b.e.SetLeases(leases.Set{})
	l.advance(time.Second)
	if n := b.e.LeaseStatus().Sent; n != 0 {
		t.Fatalf("b sent %d events for leases it never had", n)
	}
	b.e.SetLeases(leases.SetOf(got.Sorted()))
	l.advance(time.Second)
	if n := b.e.LeaseStatus().Sent; n != 0 {
		t.Fatalf("b sent %d events for the leases it got from a", n)
	}
	r := got[testLease(3, 0).Addr]
	r.Expiry += 100
	got[r.Addr] = r
	b.e.SetLeases(leases.SetOf(got.Sorted()))
	back := leases.Set{}
	for k, v := range set {
		back[k] = v
	}
	l.eventually(t, 2*time.Second, "b's renewal on a", func() bool { peerLeases(a, back); return back[r.Addr] == r })
	if n := b.e.LeaseStatus().Sent; n != 1 {
		t.Fatalf("b sent %d events for one renewal", n)
	}
}

// TestLeasesBulkAtSessionStart: a's set, given before any peer is there,
// reaches b when the session comes up; a b that restarts (a new engine,
// a new session) gets the whole set again.
func TestLeasesBulkAtSessionStart(t *testing.T) {
	l := newClockedLink()
	a := startNode(t, l, 0, testKey, nil)
	a.run(t)
	set := leases.Set{}
	for i := range 300 {
		ls := testLease(i, 1_800_003_600)
		set[ls.Addr] = ls
	}
	a.e.SetLeases(leases.SetOf(set.Sorted()))
	l.advance(time.Second) // nobody there: nothing lost
	b := startNode(t, l, 1, testKey, nil)
	b.run(t)
	got := leases.Set{}
	l.eventually(t, 10*time.Second, "a's leases on b", func() bool { peerLeases(b, got); return sameSet(got, set) })

	b.stop()
	l.reopen(1)
	b2 := startNode(t, l, 1, testKey, nil)
	b2.run(t)
	got2 := leases.Set{}
	l.eventually(t, 30*time.Second, "a's leases on the restarted b", func() bool { peerLeases(b2, got2); return sameSet(got2, set) })
}

// TestPeerLeasesCapped: a peer that makes up addresses is held to
// leases.MaxPeerLeases beyond a file's worth of our own: the rest are
// refused (too_many), never queued for the daemon; a known address still
// passes.
func TestPeerLeasesCapped(t *testing.T) {
	e := &Engine{}
	limit := leases.MaxLeases + leases.MaxPeerLeases
	lease := func(i int) leases.Lease {
		return leases.Lease{Expiry: 1_800_003_600, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), HWType: 1,
			HW: "\x02\x00\x00\x00\x00\x01"}
	}
	for i := range limit + 3 {
		e.peerLease(leases.Event{Op: leases.Add, Lease: lease(i)})
		if i%leases.MaxPeerLeases == 0 {
			e.LeaseEvents() // the daemon takes them (the queue holds 65 536)
		}
	}
	e.LeaseEvents()
	if len(e.ls.out) != limit || e.LeaseStatus().Refused["too_many"] != 3 {
		t.Fatalf("%d leases held (want %d), refused %v (want too_many 3)", len(e.ls.out), limit, e.LeaseStatus().Refused)
	}
	e.peerLease(leases.Event{Op: leases.Renew, Lease: lease(7)})
	if evs := e.LeaseEvents(); len(evs) != 1 || e.LeaseStatus().Refused["too_many"] != 3 {
		t.Errorf("a known address: %d events, refused %v", len(evs), e.LeaseStatus().Refused)
	}
}

// TestLoneLeaseEventNoAckFrame: a lone lease event costs its own frame
// on the link, not also an acknowledgement frame: the peer holds the
// acknowledgement of lease-only frames back (lazyAckDelay) until a frame
// it sends anyway carries it (here its keepalive), and the sender, which
// allows for that, does not send the lease again meanwhile. Fake clock:
// no wall time.
func TestLoneLeaseEventNoAckFrame(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	l.advance(2 * time.Second) // handshake and bulk acknowledgements over
	st := func(n *node) Counters { return n.e.Status().Counters }
	a0, b0 := st(a), st(b)
	l.mu.Lock()
	bytes0 := l.bytes
	l.mu.Unlock()
	ls := testLease(1, 1_800_003_600)
	a.e.SetLeases(leases.Set{ls.Addr: ls})
	got := leases.Set{}
	l.eventually(t, time.Second, "the lease on b", func() bool { peerLeases(b, got); return len(got) == 1 })
	l.advance(time.Second) // more than ackDelay
	l.mu.Lock()
	oneWay := l.bytes - bytes0
	l.mu.Unlock()
	if fa, fb := st(a).FramesSent-a0.FramesSent, st(b).FramesSent-b0.FramesSent; fa != 1 || fb != 0 {
		t.Fatalf("a lone lease event: %d frames from a, %d from b within 1 s (want 1, 0: no acknowledgement frame of its own)", fa, fb)
	}
	// b's keepalive carries the acknowledgement; a sends nothing again.
	l.advance(2*keepaliveInterval + time.Second)
	var inflight int
	a.e.do(context.Background(), func() { inflight = len(a.e.inflight) })
	if r := st(a).Retransmits - a0.Retransmits; r != 0 || inflight != 0 {
		t.Fatalf("after %v: %d retransmissions, %d frames of a unacknowledged (want 0, 0)", 2*keepaliveInterval+time.Second, r, inflight)
	}
	t.Logf("lone lease event: %d B on the link (IP and UDP headers included) and no acknowledgement frame", oneWay)
}
