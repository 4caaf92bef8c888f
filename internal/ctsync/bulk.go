package ctsync

// The bulk transfer: serving our whole table with a digest, checking
// the peer's, and the end of the initial sync.

import (
	"context"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

func (e *Engine) setSynced(timedOut bool) {
	e.bulkWanted = false
	if e.synced {
		// A complete table after the initial transfer timed out: the
		// transfer no longer counts as failed (Bulk.TimedOut, the
		// daemon's sync_bulk demotion), and OnSynced says so again.
		if !timedOut && e.bulkFailed {
			e.bulkFailed = false
			e.mu.Lock()
			e.st.Bulk.TimedOut = false
			e.mu.Unlock()
			if e.cfg.OnSynced != nil {
				e.cfg.OnSynced()
			}
		}
		return
	}
	e.synced, e.bulkFailed = true, timedOut
	e.release()
	// The snapshot that says synced also counts the flows that made it
	// so: a full publish first (a walk of the tables included), else a
	// reader could see synced with flows_from_peer of an older tick.
	e.lastWalk = time.Time{}
	e.publish(e.cfg.Clock.Now())
	e.mu.Lock()
	e.st.Bulk.Synced, e.st.Bulk.TimedOut = true, timedOut
	e.mu.Unlock()
	if e.cfg.OnSynced != nil {
		e.cfg.OnSynced()
	}
}

// release ends the hold of the flows found in the kernel at start that
// the peer's table did not bring: they are ours, and go to the peer.
//
// Not ours, perhaps: stale copies of flows the peer no longer has. But a
// node cannot tell those from the live connections it forwards (an
// ESTABLISHED flow that carries traffic makes no conntrack event), and
// not replicating a live flow breaks it at the next failover; a stale one
// costs the peer a table entry until it times out.
func (e *Engine) release() {
	n := 0
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.held {
			n++
			l.m.held = false
			e.mark(slot, l, newPrio(l))
		}
		return true
	})
	if n > 0 {
		e.log.Info("flows found in the kernel at start and not in the peer's table: replicating them", "flows", n)
	}
}

// startServing answers a BULK_REQ: every flow goes at bulk priority, then
// BULK_END(count, digest) once all of it is acknowledged. Flow ids grow
// monotonically, so the snapshot is "every id below serveSeq": both sides
// compute count and digest over exactly that set, however many flows come
// and go meanwhile.
func (e *Engine) startServing(now time.Time) {
	e.serveSeq = e.nextID
	e.serveTries, e.serveEndAt = 0, time.Time{}
	e.local.each(func(slot uint32, l *lflow) bool {
		if !l.m.deleted && !l.m.held {
			e.mark(slot, l, prioBulk)
			// Resend it whole: the peer asked because it may lack it.
			l.m.known = false
		}
		return true
	})
	e.log.Info("peer asked for our table", "flows", e.local.Len())
}

// serveBulkEnd sends BULK_END when the table has been delivered, and
// again every second until the peer confirms it (bounded).
func (e *Engine) serveBulkEnd(now time.Time) {
	if e.serveSeq == 0 || !e.sess.Established() || now.Sub(e.serveEndAt) < bulkEndRetry {
		return
	}
	var d wire.Digest
	done := true
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.held {
			// Part of our table, or of the peer's: not known until the
			// peer's table is in (or it is given up on). A peer that
			// started with us waits as long.
			done = false
			return false
		}
		if l.m.id >= e.serveSeq || l.m.deleted {
			return true
		}
		if !l.m.known {
			done = false // still delivering the snapshot
			return false
		}
		d.Add(l.m.id, e.local.flowKey(slot))
		return true
	})
	if !done {
		return
	}
	e.serveEndAt = now
	e.serveTries++
	if e.serveTries > 30 {
		e.log.Warn("peer never confirmed the bulk transfer")
		e.serveSeq = 0
		return
	}
	e.sendControl(now, false, wire.Record{Type: wire.RecordBulkEnd,
		Bulk: wire.Bulk{Seq: e.serveSeq, Count: uint64(d.Count()), Digest: d.Sum()}})
}

// bulkEnd handles the peer's BULK_END: its announcement (compare with what
// we hold, confirm if equal) or its confirmation of ours.
func (e *Engine) bulkEnd(ctx context.Context, b wire.Bulk, now time.Time) {
	if b.Seq&confirmFlag != 0 {
		if b.Seq&^confirmFlag == e.serveSeq {
			e.log.Info("peer confirmed our table", "flows", b.Count)
			e.serveSeq = 0
		}
		return
	}
	var d wire.Digest
	e.peer.each(func(slot uint32, p *pflow) bool {
		if !p.m.gone && !p.m.orphan && p.m.id < b.Seq {
			d.Add(p.m.id, e.peer.flowKey(slot))
		}
		return true
	})
	if uint64(d.Count()) != b.Count || d.Sum() != b.Digest {
		e.log.Debug("bulk end does not match our copy yet", "theirs", b.Count, "ours", d.Count())
		return
	}
	e.sendControl(now, false, wire.Record{Type: wire.RecordBulkEnd,
		Bulk: wire.Bulk{Seq: b.Seq | confirmFlag, Count: b.Count, Digest: b.Digest}})
	if !e.synced {
		e.log.Info("peer's table received", "flows", b.Count)
	}
	e.bulkWanted = false
	// The table is ours once the kernel holds it: part of it may still
	// wait for the applier. Run calls bulkApplied when it has written
	// everything queued so far; meanwhile acks go on.
	if e.bulkDone == nil {
		done := make(chan struct{})
		e.apply(ctx, applyJob{done: done})
		e.bulkDone = done
	}
}

// bulkApplied: the peer's table, complete, is in the kernel. The initial
// sync is over (the demotion goes), and the flows of the peer's previous
// session it did not bring again are deleted.
func (e *Engine) bulkApplied(ctx context.Context) {
	e.bulkDone = nil
	e.setSynced(false)
	e.purgeOrphans(ctx)
}

// bulkTimers asks for the peer's table while we want it, moves or ends
// the wait for it, and (re)sends our BULK_END.
func (e *Engine) bulkTimers(now time.Time) {
	// After a failed initial transfer, a session that comes up brings
	// the table we lack.
	if e.bulkFailed && !e.bulkWanted && e.bulkDone == nil && e.sess.Established() {
		e.bulkWanted, e.bulkAsked = true, time.Time{}
		e.log.Info("sync session up after the initial transfer failed; asking for the peer's table")
	}
	if e.bulkWanted && e.sess.Established() && now.Sub(e.bulkAsked) >= 5*time.Second {
		e.bulkAsked = now
		e.sendControl(now, false, wire.Record{Type: wire.RecordBulkReq})
	}
	// The bulk deadline is for a dead peer. One that is there but with
	// which the handshake fails has the table we lack: while it fails,
	// the deadline moves on (the transfer gets a whole timeout once the
	// session is up), and the demotion stays, whatever the time.
	if !e.synced && e.handshakeFailing(now) {
		if now.After(e.bulkDeadline) && !e.handshakeWait {
			e.handshakeWait = true
			e.log.Warn("the peer is there but the handshake fails; keeping the sync demotion until its table is in")
		}
		if d := now.Add(e.cfg.BulkTimeout); d.After(e.bulkDeadline) {
			e.bulkDeadline = d
		}
	}
	if !e.synced && e.bulkDone == nil && now.After(e.bulkDeadline) {
		e.log.Warn("no complete table from the peer in time; going on without it", "timeout", e.cfg.BulkTimeout)
		e.setSynced(true)
	}
	e.serveBulkEnd(now)
}
