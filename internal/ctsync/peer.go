package ctsync

// The peer's flows: our own filter and timeout clamp on them, and the
// bookkeeping of the table that holds them.

import (
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// pmeta is the bookkeeping of a flow of the peer, injected into our
// kernel.
type pmeta struct {
	id        uint64
	ver       uint64
	confirmed int64 // last NEW, UPDATE or REFRESH from the peer (Unix ns)
	// gone: the peer deleted it lately. Its key stays in the table a
	// while (peerGoneFor), for the kernel's events about our own writes.
	gone bool
	// orphan: a flow of the peer's previous session (it restarted). It
	// stays until the new session's table brings its key again, or is
	// deleted from the kernel when that table is complete without it.
	orphan bool
	// out: not in our kernel, and never to be deleted from it: our filter
	// refused it (Config.Admit), or an entry of ours holds its tuple
	// (flow.ErrLocalClash). It is kept for the bulk digest and so that
	// its updates are not asked for again; an update our filter admits
	// is injected.
	out bool
}

type pflow = tentry[pmeta]

// goneRef is a flow the peer deleted, kept until at+peerGoneFor.
type goneRef struct {
	slot uint32
	id   uint64
	at   time.Time
}

// admit runs a flow of the peer through our own filter (Config.Admit)
// and counts a refusal by its reason, then cuts its timeout (clamp).
func (e *Engine) admit(f *flow.Flow) bool {
	if e.cfg.Admit != nil {
		if why := e.cfg.Admit(f); why != flow.Accepted {
			e.count(func(c *Counters) {
				switch why {
				case flow.RefusedProtocol:
					c.RefusedProtocol++
				case flow.RefusedAddress:
					c.RefusedAddress++
				case flow.RefusedLocal:
					c.RefusedLocal++
				case flow.RefusedZone:
					c.RefusedZone++
				case flow.RefusedMark:
					c.RefusedMark++
				case flow.RefusedState:
					c.RefusedState++
				default:
					c.DropInvalid++
				}
			})
			e.log.Debug("peer flow refused by our filter", "reason", why.String(), "flow", f.Orig)
			return false
		}
	}
	e.clamp(f)
	return true
}

// clamp cuts f's timeout to the kernel's default for its protocol and
// state (Config.MaxTimeout), and counts it.
func (e *Engine) clamp(f *flow.Flow) {
	if e.cfg.MaxTimeout == nil {
		return
	}
	if m := e.cfg.MaxTimeout(f); m > 0 && f.Timeout > m {
		f.Timeout = m
		e.count(func(c *Counters) { c.Clamped++ })
	}
}

// injected reports whether the kernel entry x, in the way of a flow we
// inject, came from the peer: our table of its flows has x's key with
// x's reply tuple (or had it until a NEW of the same frame replaced it:
// applyJob.displaced, which askInjected checks first). Everything else
// is ours, or forwarded by us, and stays (Kernel.Inject).
func (e *Engine) injected(x *flow.Flow) bool {
	k := keyOf(x.Key())
	if slot, ok := e.peer.lookup(k); ok && !e.peer.at(slot).m.out {
		return e.peer.flow(slot).Reply == x.Reply
	}
	return false
}

// removePeer frees a slot of the peer table (and its id, if the id maps
// to it: an orphan's id may be reused by the new session).
func (e *Engine) removePeer(slot uint32) {
	id := e.peer.at(slot).m.id
	if s, ok := e.peerIDs[id]; ok && s == slot {
		delete(e.peerIDs, id)
	}
	e.peer.remove(slot)
}

// dropPeer forgets the peer's flow id.
func (e *Engine) dropPeer(id uint64) {
	if slot, ok := e.peerIDs[id]; ok {
		delete(e.peerIDs, id)
		e.peer.remove(slot)
	}
}

// expireGone forgets the keys of the flows the peer deleted more than
// peerGoneFor ago.
func (e *Engine) expireGone(now time.Time) {
	for len(e.peerGone) > 0 && now.Sub(e.peerGone[0].at) > peerGoneFor {
		g := e.peerGone[0]
		if p := e.peer.get(g.slot); p != nil && p.m.gone && p.m.id == g.id {
			e.peer.remove(g.slot)
		}
		e.peerGone = e.peerGone[1:]
	}
	if len(e.peerGone) == 0 {
		e.peerGone = nil // let a burst's array go
	}
}

// peerNew takes in the peer's NEW: into the peer table, and into job for
// the kernel unless our filter refuses it.
func (e *Engine) peerNew(r *wire.Record, now time.Time, job *applyJob) {
	if r.Flow.Valid() != nil {
		e.count(func(c *Counters) { c.DropInvalid++ })
		return
	}
	c, ok := packFlow(&r.Flow)
	if !ok {
		e.count(func(c *Counters) { c.DropInvalid++ })
		return
	}
	if slot, ok := e.peerIDs[r.ID]; ok {
		if p := e.peer.at(slot); r.Version <= p.m.ver && r.Version != 0 {
			return // stale or duplicate
		}
	}
	out := !e.admit(&r.Flow)
	if !out {
		c.c.timeout = r.Flow.Timeout
	}
	e.dropPeer(r.ID)
	if _, ok := e.peer.lookup(c.key()); !ok && e.peer.Len() >= e.cfg.MaxPeerFlows {
		e.count(func(c *Counters) { c.DropPeerFull++ })
		return
	}
	if slot, ok := e.local.lookup(c.key()); ok && e.local.at(slot).m.held && !out {
		e.local.remove(slot) // the peer's flow, injected by our predecessor
	}
	if slot, ok := e.peer.lookup(c.key()); ok {
		// The tuple under another id: gone lately, an orphan of
		// the peer's previous session, or a new connection whose
		// NEW overtook the old one's DELETE. The newer id owns
		// the key; the old one's DELETE, if it comes, is for an
		// unknown id. Its kernel entry, if we injected it, may be
		// replaced by the new one (injected).
		if old := e.peer.at(slot); !old.m.out {
			job.displace(c.key(), e.peer.flow(slot).Reply)
		}
		e.removePeer(slot)
	}
	delete(e.wanted, r.ID)
	slot := e.peer.insert(&c, pmeta{id: r.ID, ver: r.Version, confirmed: now.UnixNano(), out: out})
	e.peerIDs[r.ID] = slot
	if !out {
		job.add(e.peer.flow(slot), sentRec{id: r.ID, slot: slot})
		job.news++
	}
}

// peerUpdate takes in the peer's UPDATE or REFRESH of a flow we hold (an
// unknown one is wanted: anti-entropy).
func (e *Engine) peerUpdate(r *wire.Record, now time.Time, job *applyJob) {
	slot, ok := e.peerIDs[r.ID]
	if !ok {
		e.count(func(c *Counters) { c.DropUnknownID++ })
		// Not when the table is full: the flow would be dropped
		// again, and asked for again, forever.
		if len(e.wanted) < maxWanted && e.peer.Len() < e.cfg.MaxPeerFlows {
			e.wanted[r.ID] = struct{}{}
		}
		return
	}
	p := e.peer.at(slot)
	if r.Type == wire.RecordUpdate && r.Version <= p.m.ver && r.Version != 0 {
		return
	}
	p.m.confirmed = now.UnixNano()
	if r.Type == wire.RecordUpdate {
		// The whole flow as it would be, through our filter: a
		// peer must not change what we admitted into what we
		// refuse (a mark, a zone's worth of state).
		f := e.peer.flow(slot)
		f.Status, f.Mark = r.Flow.Status, r.Flow.Mark
		f.TCPState, f.TCPWScaleOrig, f.TCPWScaleReply = r.Flow.TCPState, r.Flow.TCPWScaleOrig, r.Flow.TCPWScaleReply
		f.TCPFlagsOrig, f.TCPFlagsReply = r.Flow.TCPFlagsOrig, r.Flow.TCPFlagsReply
		f.Timeout = r.Flow.Timeout
		p.m.ver = r.Version
		if !e.admit(&f) {
			return // the injected version, if any, stays
		}
		p.f.status, p.f.mark = f.Status, f.Mark
		p.f.tcp = [5]uint8{f.TCPState, f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply}
		p.m.out = false // admitted now: inject it
	}
	if p.m.out {
		return
	}
	f := e.peer.flow(slot)
	f.Timeout = r.Flow.Timeout
	e.clamp(&f)
	p.f.timeout = f.Timeout
	job.add(f, sentRec{id: r.ID, slot: slot})
}

// peerDelete takes in the peer's DELETE: the flow's key stays known a
// while (peerGoneFor), and its kernel entry, if we injected it, goes.
func (e *Engine) peerDelete(r *wire.Record, now time.Time, job *applyJob) {
	if slot, ok := e.peerIDs[r.ID]; ok {
		p := e.peer.at(slot)
		delete(e.peerIDs, r.ID)
		p.m.gone = true
		e.peerGone = append(e.peerGone, goneRef{slot: slot, id: r.ID, at: now})
		if !p.m.out {
			job.del = append(job.del, e.peer.flowKey(slot))
		}
	}
}
