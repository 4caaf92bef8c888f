package ctsync

// Anti-entropy: flows the peer lacks sent again (WANT), and the peer's
// flows that are gone there purged from our kernel.

import (
	"context"
	"sort"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
)

// resend answers a WANT: the flows the peer lacks go again as NEW.
func (e *Engine) resend(ids []uint64) {
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	n := 0
	e.local.each(func(slot uint32, l *lflow) bool {
		if want[l.m.id] && l.m.known && !l.m.deleted && !l.m.held {
			l.m.known = false
			e.mark(slot, l, newPrio(l))
			n++
		}
		return true
	})
	e.count(func(c *Counters) { c.Repaired += uint64(n) })
	if n > 0 {
		e.log.Info("peer lacked flows; sending them again", "flows", n)
	}
}

// purgeOrphans deletes the flows of the peer's previous session that its
// complete table did not bring again.
func (e *Engine) purgeOrphans(ctx context.Context) {
	var dels []flow.Key
	e.peer.each(func(slot uint32, p *pflow) bool {
		if p.m.orphan {
			if !p.m.out {
				dels = append(dels, e.peer.flowKey(slot))
			}
			e.peer.remove(slot)
		}
		return true
	})
	e.deleteStale(ctx, dels, "flows of the peer's previous session it no longer has")
}

// purgeStale deletes the peer's flows it has not confirmed for
// staleRefreshes refresh periods while the session was up all along:
// their DELETE was lost (the peer refreshes every flow it holds once a
// period). Not while the peer is silent: then it confirms nothing.
func (e *Engine) purgeStale(ctx context.Context, now time.Time) {
	age := staleRefreshes * e.cfg.Refresh
	if e.peerSince.IsZero() || now.Sub(e.peerSince) < age || !e.canSend(now) {
		return
	}
	e.deleteStale(ctx, e.takeUnconfirmed(now.Add(-age)), "peer flows it stopped confirming")
}

// takeUnconfirmed removes from the peer table the flows the peer last
// confirmed before cut, and returns their keys.
func (e *Engine) takeUnconfirmed(cut time.Time) []flow.Key {
	var keys []flow.Key
	c := cut.UnixNano()
	e.peer.each(func(slot uint32, p *pflow) bool {
		if !p.m.gone && p.m.confirmed < c {
			if !p.m.out {
				keys = append(keys, e.peer.flowKey(slot))
			}
			e.removePeer(slot)
		}
		return true
	})
	return keys
}

func (e *Engine) deleteStale(ctx context.Context, dels []flow.Key, what string) {
	if len(dels) == 0 {
		return
	}
	e.count(func(c *Counters) { c.PurgedStale += uint64(len(dels)) })
	e.log.Info("deleting "+what, "flows", len(dels))
	e.apply(ctx, applyJob{del: dels, delErr: func(err error) { e.log.Warn("deleting stale flows", "err", err) }})
}

// purge deletes the peer's flows it has not confirmed for two refresh
// periods before the takeover.
func (e *Engine) purge(ctx context.Context) {
	dels := e.takeUnconfirmed(e.takeoverAt.Add(-2 * e.cfg.Refresh))
	if len(dels) == 0 {
		return
	}
	e.log.Info("purging peer flows it no longer confirmed", "flows", len(dels))
	e.apply(ctx, applyJob{del: dels, delErr: func(err error) { e.log.Warn("purging flows", "err", err) }})
}

// sendWant asks the peer, at most once a wantInterval, for the flows it
// updates or refreshes but we lack.
func (e *Engine) sendWant(now time.Time) {
	if len(e.wanted) == 0 || !e.canSend(now) || now.Sub(e.lastWant) < wantInterval {
		return
	}
	e.lastWant = now
	ids := make([]uint64, 0, len(e.wanted))
	for id := range e.wanted {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	ids = ids[:min(len(ids), wire.MaxWant)]
	for _, id := range ids {
		delete(e.wanted, id)
	}
	e.sendControl(now, false, wire.Record{Type: wire.RecordWant, Want: ids})
	e.count(func(c *Counters) { c.Wanted += uint64(len(ids)) })
	e.log.Debug("asked the peer for flows we lack", "flows", len(ids))
}
