package ctsync

// Status: the snapshot other goroutines read, and its counters.

import (
	"fmt"
	"time"
)

// Status is the sync part of `carpd status`.
type Status struct {
	Peer        string `json:"peer"`
	PeerName    string `json:"peer_name,omitempty"`
	PeerUp      bool   `json:"peer_up"`
	Established bool   `json:"established"`
	// HandshakeFailing: the peer's frames authenticate but no session
	// is up (its clock went back, say); the sync demotion stays.
	HandshakeFailing bool       `json:"handshake_failing"`
	LastAck          time.Time  `json:"last_ack,omitzero"`
	RTT              string     `json:"rtt,omitempty"`
	FlowsLocal       int        `json:"flows_local"`     // flows we replicate
	FlowsSynced      int        `json:"flows_synced"`    // of those, acknowledged by the peer
	FlowsPending     int        `json:"flows_pending"`   // waiting to be sent
	FlowsPeer        int        `json:"flows_from_peer"` // the peer's flows in our kernel
	Bulk             BulkStatus `json:"bulk"`
	Counters         Counters   `json:"counters"`
}

// BulkStatus is the progress of the initial transfer.
type BulkStatus struct {
	Synced   bool `json:"synced"`    // we have the peer's table (or gave up waiting)
	TimedOut bool `json:"timed_out"` // gave up waiting, and no complete table came since
	Received int  `json:"received"`  // peer flows received so far
	Serving  bool `json:"serving"`   // sending our table to the peer
	Queued   int  `json:"queued"`    // of our table, still to send
}

// Counters are the sync link's statistics.
type Counters struct {
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`
	FramesSent     uint64 `json:"frames_sent"`
	FramesReceived uint64 `json:"frames_received"`
	FlowsSent      uint64 `json:"records_sent"`
	FlowsReceived  uint64 `json:"records_received"`
	Retransmits    uint64 `json:"flows_resent"`
	// Anti-entropy: flows we asked the peer for again (we lacked them),
	// flows the peer asked us for, and peer flows deleted because the
	// peer no longer has them (stale, or left from its previous session).
	Wanted      uint64 `json:"flows_wanted"`
	Repaired    uint64 `json:"flows_repaired"`
	PurgedStale uint64 `json:"flows_purged_stale"`
	BornAndDead uint64 `json:"flows_never_sent"`
	Overruns    uint64 `json:"kernel_overruns"`
	// Drops by reason.
	DropAuth      uint64 `json:"drop_auth"`
	DropReplay    uint64 `json:"drop_replay"`
	DropEpoch     uint64 `json:"drop_epoch"`
	DropMalformed uint64 `json:"drop_malformed"`
	DropSource    uint64 `json:"drop_wrong_source"`
	DropQueue     uint64 `json:"drop_queue_full"`
	// DropOversize: datagrams larger than any frame of ours, dropped
	// unread; DropPeerFull: peer flows beyond MaxPeerFlows.
	DropOversize uint64 `json:"drop_oversize"`
	DropPeerFull uint64 `json:"drop_peer_table_full"`
	// The peer's flows our own filter refused (Config.Admit), by rule;
	// invalid ones count as drop_invalid_flow.
	RefusedProtocol uint64 `json:"refused_protocol"`
	RefusedAddress  uint64 `json:"refused_address"`
	RefusedLocal    uint64 `json:"refused_local"`
	RefusedZone     uint64 `json:"refused_zone"`
	RefusedMark     uint64 `json:"refused_mark"`
	RefusedState    uint64 `json:"refused_state"`
	// RefusedClash: flows of the peer not injected because an entry of
	// ours (not injected from the peer) held their tuple.
	RefusedClash uint64 `json:"refused_clash"`
	// Clamped: timeouts of the peer's flows cut to the kernel's default
	// for their protocol and state.
	Clamped       uint64 `json:"timeouts_clamped"`
	DropInvalid   uint64 `json:"drop_invalid_flow"`
	DropUnknownID uint64 `json:"drop_unknown_id"`
	ApplyErrors   uint64 `json:"apply_errors"`
	SendErrors    uint64 `json:"send_errors"`
}

// Status returns a snapshot; safe from any goroutine.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// Synced reports whether the initial transfer is over (done or given up).
func (e *Engine) Synced() bool { return e.Status().Bulk.Synced }

// publish copies the table sizes into the status snapshot.
func (e *Engine) publish(now time.Time) {
	walk := now.Sub(e.lastWalk) >= publishWalk
	synced, pending := 0, 0
	if walk {
		e.lastWalk = now
		e.peerOut = 0
		e.peer.each(func(_ uint32, p *pflow) bool {
			if p.m.out && !p.m.gone {
				e.peerOut++
			}
			return true
		})
		e.local.each(func(_ uint32, l *lflow) bool {
			if l.m.known {
				synced++
			}
			if l.m.dirty != prioNone {
				pending++
			}
			return true
		})
	}
	_, _, _, ok := e.sess.Peer()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.Established = e.sess.Established()
	e.st.PeerUp = ok && !e.lastRecv.IsZero() && now.Sub(e.lastRecv) < e.peerDead
	e.st.HandshakeFailing = e.handshakeFailing(now)
	e.st.FlowsLocal = e.local.Len()
	if walk {
		e.st.FlowsSynced, e.st.FlowsPending = synced, pending
	}
	// Not the refused ones, nor those still on their way to the kernel.
	e.st.FlowsPeer = max(len(e.peerIDs)-e.peerOut-int(e.unapplied.Load()), 0)
	e.st.Bulk.Received = len(e.peerIDs)
	e.st.Bulk.Serving = e.serveSeq != 0
	e.st.Bulk.Queued = len(e.queues[prioBulk])
	if e.srtt > 0 {
		e.st.RTT = e.srtt.Round(10 * time.Microsecond).String()
	}
}

// String is for logs.
func (s Status) String() string {
	return fmt.Sprintf("peer %s up=%v local %d synced %d peer %d", s.Peer, s.PeerUp, s.FlowsLocal, s.FlowsSynced, s.FlowsPeer)
}
