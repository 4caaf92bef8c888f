package ctsync

// Our flows: kernel events and dumps into the local table, queued by
// priority for the peer.

import (
	"context"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// Priorities of dirty flows: lower goes first (docs/sync-protocol.md,
// "Priorities and coalescing").
const (
	prioNone    = -1
	prioUrgent  = 0 // NEW of established (ASSURED) flows: urgentWindow
	prioNew     = 1 // NEW of flows being set up, DELETE: the window
	prioUpdate  = 2 // state changes
	prioRefresh = 3 // timeout refreshes
	prioBulk    = 4 // the table for a peer that (re)started
	numPrios    = 5
)

// newPrio is the priority of a flow the peer does not know yet, or must
// forget. Only what a failover would break is urgent: an established
// connection the backup lacks. A connection being set up that the backup
// misses retries its SYN; a flow the backup keeps too long is purged
// after a takeover. Those wait for the window, where short flows fold
// into one NEW (or none: born and dead) and DELETEs share frames.
//
// A TCP connection past its last data (both FINs seen, or a RST) is not
// urgent: nothing a failover could break. Half-closed ones (FIN_WAIT,
// CLOSE_WAIT) may still carry data one way for long, so they are.
func newPrio(l *lflow) int8 {
	if !l.m.deleted && l.f.assured() && !l.f.closing() {
		return prioUrgent
	}
	return prioNew
}

// lmeta is the bookkeeping of a local flow: one we replicate to the peer.
type lmeta struct {
	id      uint64
	ver     uint32 // bumped on every change
	sentVer uint32 // version in the newest frame that carried it
	dirty   int8   // queued priority, or prioNone
	known   bool   // the peer acknowledged a frame with its NEW
	sent    bool   // some frame carried it
	deleted bool   // DESTROY seen; a DELETE is due
	seen    bool   // in the dump being reconciled (resyncFromKernel)
	held    bool   // found in the kernel at start, owner unknown (holding)
}

// lflow is a local flow in its table slot.
type lflow = tentry[lmeta]

func (e *Engine) event(ctx context.Context, ev *flow.Event) {
	switch ev.Type {
	case flow.EventNew, flow.EventUpdate:
		e.upsert(&ev.Flow)
	case flow.EventDestroy:
		e.destroy(ev.Flow.Key())
	case flow.EventOverrun:
		e.count(func(c *Counters) { c.Overruns++ })
		e.log.Warn("conntrack events were lost; reconciling from a dump")
		if err := e.resyncFromKernel(ctx); err != nil {
			e.log.Error("conntrack dump", "err", err)
		}
	}
}

func (e *Engine) upsert(f *flow.Flow) {
	c, ok := packFlow(f)
	if !ok {
		e.count(func(c *Counters) { c.DropInvalid++ })
		return
	}
	key := c.key()
	slot, ok := e.local.lookup(key)
	if !ok {
		if ps, ok := e.peer.lookup(key); ok && !e.peer.at(ps).m.out && !e.adopting {
			// We injected it from the peer, which replicates it: sending
			// it back would have the peer write our stale copy over its
			// live entry (or bring it back after its DELETE).
			return
		}
		slot = e.local.insert(&c, lmeta{id: e.nextID, ver: 1, dirty: prioNone, seen: true, held: e.holding})
		e.nextID++
		l := e.local.at(slot)
		if !l.m.held {
			e.mark(slot, l, newPrio(l))
		}
		return
	}
	l := e.local.at(slot)
	l.m.seen = true
	if l.m.held && !e.holding {
		// An event: the flow lives here, it is ours.
		l.m.held = false
		e.local.set(slot, &c)
		e.mark(slot, l, newPrio(l))
		return
	}
	if l.m.deleted {
		// The same tuple again after a DESTROY: a new connection. The old
		// id finishes its DELETE (its slot stays until acknowledged, out
		// of the index); the new one gets its own id and slot.
		e.local.unindex(slot)
		e.upsert(f)
		return
	}
	timeoutOnly := e.local.sameButTimeout(slot, &c)
	e.local.set(slot, &c)
	if timeoutOnly {
		return // timeouts travel with refreshes
	}
	l.m.ver++
	if l.m.known {
		e.mark(slot, l, prioUpdate)
	} else {
		e.mark(slot, l, newPrio(l))
	}
}

func (e *Engine) destroy(key flow.Key) {
	slot, ok := e.local.lookup(keyOf(key))
	if !ok {
		return
	}
	e.destroySlot(slot)
}

func (e *Engine) destroySlot(slot uint32) {
	l := e.local.at(slot)
	if l.m.deleted {
		return
	}
	if l.m.held {
		e.local.remove(slot) // gone before anyone knew whose it was
		return
	}
	if !l.m.sent {
		// Born and dead within the window: never on the wire.
		e.local.remove(slot)
		e.count(func(c *Counters) { c.BornAndDead++ })
		return
	}
	l.m.deleted = true
	l.m.ver++
	e.mark(slot, l, prioNew)
}

// mark queues l (in slot) at priority p, unless it is queued at p or
// higher already.
func (e *Engine) mark(slot uint32, l *lflow, p int8) {
	if l.m.dirty != prioNone && l.m.dirty <= p {
		return
	}
	l.m.dirty = p
	e.queues[p] = append(e.queues[p], slot)
}

// resyncFromKernel reconciles the local table with a dump: new flows are
// sent, changed ones updated, vanished ones deleted, timeouts refreshed.
// The flows of the dump are marked seen as they are taken in, the others
// are deleted after it: no second copy of the table.
func (e *Engine) resyncFromKernel(ctx context.Context) error {
	e.local.each(func(_ uint32, l *lflow) bool {
		l.m.seen = false
		return true
	})
	err := e.k.Each(ctx, e.upsert)
	if err != nil {
		return err
	}
	e.local.each(func(slot uint32, l *lflow) bool {
		if !l.m.seen && !l.m.deleted && e.local.indexed(slot) {
			e.destroySlot(slot)
		}
		return true
	})
	return nil
}

// refresh re-reads the kernel (timeouts change without events) and queues
// a REFRESH of every flow the peer knows.
func (e *Engine) refresh(ctx context.Context) {
	if err := e.resyncFromKernel(ctx); err != nil {
		e.log.Warn("conntrack dump for refresh", "err", err)
	}
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.known && !l.m.deleted {
			e.mark(slot, l, prioRefresh)
		}
		return true
	})
}

// record returns the record that brings the peer up to date on l.
func (e *Engine) record(slot uint32, l *lflow, prio int8) wire.Record {
	m := &l.m
	switch {
	case m.deleted:
		return wire.Record{Type: wire.RecordDelete, ID: m.id}
	case !m.known:
		return wire.Record{Type: wire.RecordNew, ID: m.id, Version: uint64(m.ver), Flow: e.local.flow(slot)}
	case prio == prioRefresh:
		return wire.Record{Type: wire.RecordRefresh, ID: m.id, Flow: e.local.flow(slot)}
	}
	return wire.Record{Type: wire.RecordUpdate, ID: m.id, Version: uint64(m.ver), Flow: e.local.flow(slot)}
}
