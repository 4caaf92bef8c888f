package ctsync

import (
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
)

// TestSessionSurvivesClock: a node restarts with an epoch no higher than
// its previous run's (two restarts within a second, or a clock behind).
// Its peer refuses the new session while the old one may still be alive,
// then takes it once the old one has been silent; meanwhile the node keeps
// its sync demotion (Bulk.Synced stays false) past its bulk timeout, and
// in the end gets the peer's whole table.
func TestSessionSurvivesClock(t *testing.T) {
	const oldEpoch = 1_000_000
	for _, tc := range []struct {
		name  string
		epoch uint32
	}{
		{"same second", oldEpoch},
		{"clock behind", oldEpoch - 86400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newClockedLink()
			a := startNode(t, l, 0, testKey, func(c *Config) { c.Epoch = oldEpoch })
			b := startNode(t, l, 1, testKey, nil)
			b.e.peerDead = 2 * time.Second
			a.run(t)
			b.run(t)
			for i := range 50 {
				b.k.Put(tcpFlow(i, flow.TCPEstablished), flow.EventNew)
			}
			l.eventually(t, 5*time.Second, "first sync", func() bool { return converged(b.k, a.k) })

			a.stop()
			l.reopen(0)
			a2 := startNode(t, l, 0, testKey, func(c *Config) {
				c.Epoch = tc.epoch
				c.BulkTimeout = 500 * time.Millisecond
			})
			a2.e.peerDead = 2 * time.Second
			a2.run(t)
			l.advance(1200 * time.Millisecond) // past a2's bulk timeout; b still holds a's session
			if st := a2.e.Status(); st.Established || st.Bulk.Synced || !st.HandshakeFailing {
				t.Fatalf("while b refuses the session: established %v, synced (demotion lifted) %v, handshake failing %v",
					st.Established, st.Bulk.Synced, st.HandshakeFailing)
			}
			l.eventually(t, 10*time.Second, "session re-established, table in", func() bool {
				return a2.e.Status().Established && b.e.Status().Established && a2.e.Synced() && converged(b.k, a2.k)
			})
			if a2.e.Status().Bulk.TimedOut {
				t.Fatal("the bulk transfer was given up rather than completed")
			}
		})
	}
}

// TestNewEpochMonotonic: epochs handed out in one process only grow, even
// within one second or with a clock before 2020.
func TestNewEpochMonotonic(t *testing.T) {
	now := time.Now()
	a, b := newEpoch(now), newEpoch(now)
	c := newEpoch(time.Unix(0, 0))
	if !(a < b && b < c) || a == 0 {
		t.Fatalf("epochs %d, %d, %d: want growing", a, b, c)
	}
}
