package ctsync

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

func peerCarpOf(n *node) map[string]uint8 {
	out := map[string]uint8{}
	for _, s := range n.e.PeerCarp() {
		out[fmt.Sprintf("%s/%d", s.Interface, s.VHID)] = s.State
	}
	return out
}

// TestCarpStatesExchanged: what one router sets reaches the other at once
// (not at the next period), changes too; more states than one record
// holds go in several; an invalid entry is left out; when the link dies
// the peer's states are no longer known.
func TestCarpStatesExchanged(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 0, nil)
	l.eventually(t, 5*time.Second, "session up", func() bool { return a.e.Status().PeerUp && b.e.Status().PeerUp })
	if got := peerCarpOf(b); len(got) != 0 {
		t.Fatalf("b knows states a never set: %v", got)
	}
	a.e.SetCarp([]wire.CarpState{{Interface: "eth0", VHID: 1, State: wire.CarpMaster}, {Interface: "eth1", VHID: 2, State: wire.CarpBackup},
		{Interface: "bad name", VHID: 3, State: wire.CarpMaster}})
	// At once: well before the period (carpEvery).
	l.eventually(t, 50*time.Millisecond, "a's states on b", func() bool {
		got := peerCarpOf(b)
		return len(got) == 2 && got["eth0/1"] == wire.CarpMaster && got["eth1/2"] == wire.CarpBackup
	})
	a.e.SetCarp([]wire.CarpState{{Interface: "eth0", VHID: 1, State: wire.CarpBackup}, {Interface: "eth1", VHID: 2, State: wire.CarpBackup}})
	l.eventually(t, 50*time.Millisecond, "the change on b", func() bool { return peerCarpOf(b)["eth0/1"] == wire.CarpBackup })
	// They keep coming: still known long after (each is heard again).
	l.advance(20 * time.Second)
	if got := peerCarpOf(b); len(got) != 2 {
		t.Fatalf("b's view of a 20 s later: %v", got)
	}
	// Many vhids: several records.
	var many []wire.CarpState
	for i := range 100 {
		many = append(many, wire.CarpState{Interface: fmt.Sprintf("vlan%d", i), VHID: uint8(i + 1), State: wire.CarpMaster})
	}
	b.e.SetCarp(many)
	l.eventually(t, 50*time.Millisecond, "b's 100 states on a", func() bool { return len(peerCarpOf(a)) == 100 })
	if got := peerCarpOf(a); len(got) != 100 {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("a knows %d of b's 100 states: %v", len(got), keys)
	}
	// CARP frames ask for no acknowledgement and count no drop.
	if c := a.e.Status().Counters; c.DropMalformed != 0 {
		t.Errorf("a dropped %d frames as malformed", c.DropMalformed)
	}
	// The link dies: once the peer is taken for dead, nothing is known.
	l.mu.Lock()
	l.loss = 1
	l.mu.Unlock()
	l.advance(peerDeadAfter + time.Second)
	if got := peerCarpOf(b); len(got) != 0 {
		t.Fatalf("b still knows a's states with the link down: %v", got)
	}
}

// TestUnknownExtensionIgnored: a frame with an extension record of a
// later version (here type 29) between flow records is taken in: the flows
// around it arrive, and the frame is not counted malformed.
func TestUnknownExtensionIgnored(t *testing.T) {
	l, a, b := syncedPairOn(t, newClockedLink(), 3, nil)
	var enc wire.Encoder
	enc.Reset(nil)
	_ = enc.Append(&wire.Record{Type: wire.RecordPing})
	payload := append(enc.Bytes(), 0x1d, 2, 0xaa, 0xbb) // extension 29, 2 bytes
	payload = append(payload, 0x00)                     // and a PING after it
	before := b.e.Status().Counters
	a.e.do(t.Context(), func() { a.e.send(payload, a.e.cfg.Clock.Now(), false) })
	l.settle()
	after := b.e.Status().Counters
	if after.DropMalformed != before.DropMalformed || after.FramesReceived != before.FramesReceived+1 || after.FlowsReceived != before.FlowsReceived+2 {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}
}
