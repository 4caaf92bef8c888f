package ctsync

// The peer's flows: our own filter and timeout clamp on them, and the
// bookkeeping of the table that holds them.

import (
	"time"

	"github.com/carpd/carpd/ctsync/flow"
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
// x's reply tuple (or had it until a NEW of this receive replaced it).
// Everything else is ours, or forwarded by us, and stays (Kernel.Inject).
func (e *Engine) injected(x *flow.Flow) bool {
	k := keyOf(x.Key())
	if r, ok := e.displaced[k]; ok && r == x.Reply {
		return true
	}
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
