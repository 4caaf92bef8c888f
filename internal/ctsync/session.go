package ctsync

// The session: epochs, the handshake with a peer whose clock went back,
// and what a peer (re)start resets.

import (
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

// epochBase is 2020-01-01 in Unix seconds: epochs count seconds from
// it, which fits 32 bits until 2156.
const epochBase = 1577836800

// lastEpoch is the newest epoch newEpoch handed out in this process.
var lastEpoch atomic.Uint32

// newEpoch is the session epoch of an engine started at now: the seconds
// since 2020, and above every epoch handed out before in this process, so
// that an engine restarted within the same second (a reload) still has a
// higher one. Across processes the clock may go back (a board without a
// real-time clock boots before NTP, two restarts within a second): the
// peer then refuses the new session until the old one has been silent for
// peerDeadAfter, and lets it in (receive).
func newEpoch(now time.Time) uint32 {
	ep := uint32(1) // a clock before 2020 is a clock not set yet
	if sec := now.Unix() - epochBase; sec > 1 && sec < 1<<32 {
		ep = uint32(sec)
	}
	for {
		last := lastEpoch.Load()
		next := max(ep, last+1)
		if lastEpoch.CompareAndSwap(last, next) {
			return next
		}
	}
}

// staleSession handles a frame of a peer session older than (or as old
// as) the one we hold. A HELLO of it authenticates (wire.Session.Open
// checks), so the peer is there with the key: it restarted with its clock
// behind, or twice within a second. If the session we hold has been
// silent for peerDead, it is gone: forget it and take the new one.
// Otherwise answer with our HELLO (at most twice a helloInterval, the
// peer's HELLO rate, so that none is missed to jitter), so the
// peer knows we are here and keeps its demotion (handshakeFailing).
func (e *Engine) staleSession(b []byte, now time.Time) (wire.Opened, error) {
	h, _, err := wire.ParseHeader(b)
	if err != nil || h.Type != wire.FrameHello {
		return wire.Opened{}, wire.ErrStaleEpoch
	}
	e.lastAuthentic = now
	if now.Sub(e.lastRecv) < e.peerDead {
		if now.Sub(e.lastStaleHello) >= helloInterval/2 {
			e.lastStaleHello = now
			e.sendControl(now, true)
		}
		return wire.Opened{}, wire.ErrStaleEpoch
	}
	e.log.Info("the peer's session we held is silent; taking its new one", "epoch", h.Epoch)
	e.sess.ForgetPeer()
	return e.sess.Open(nil, b)
}

// handshakeFailing: the peer is there (a frame of it authenticated
// lately) but we have no session with it.
func (e *Engine) handshakeFailing(now time.Time) bool {
	return !e.sess.Established() && !e.lastAuthentic.IsZero() && now.Sub(e.lastAuthentic) < e.peerDead
}

// newPeer: the peer (re)started, or we did from its point of view. It
// knows nothing of our table: everything goes again, at bulk priority so
// live changes keep going first. Its old flow ids mean nothing any more.
func (e *Engine) newPeer(now time.Time) {
	_, _, name, _ := e.sess.Peer()
	e.log.Info("sync peer session started", "name", name)
	e.mu.Lock()
	e.st.PeerName = name
	e.mu.Unlock()
	e.inflight = map[uint64]*inflight{}
	e.maxAcked, e.backoff = 0, 0
	e.recvCum, e.recvAbove = 0, map[uint64]bool{}
	// The peer's flows of its previous session become orphans, and we
	// ask for its table: what it no longer has is then deleted.
	orphans := 0
	e.peer.each(func(slot uint32, p *pflow) bool {
		if p.m.gone {
			e.peer.remove(slot)
		} else {
			p.m.orphan = true
			orphans++
		}
		return true
	})
	e.peerIDs, e.peerGone, e.wanted = map[uint64]uint32{}, nil, map[uint64]struct{}{}
	e.peerSince = now
	e.leaseNewPeer()
	if orphans > 0 {
		e.bulkWanted, e.bulkAsked = true, time.Time{}
		e.log.Info("peer restarted; asking for its table to drop what it no longer has", "flows", orphans)
	}
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.deleted {
			e.local.remove(slot) // the new peer never had it
			return true
		}
		if l.m.held {
			return true
		}
		l.m.known, l.m.sent = false, false
		e.mark(slot, l, prioBulk)
		return true
	})
	if !e.synced {
		e.bulkAsked = time.Time{} // ask the new peer at once
	}
}

// sessionTimers sends HELLO until the session is up, then keepalives.
func (e *Engine) sessionTimers(now time.Time) {
	if !e.sess.Established() {
		if now.Sub(e.lastHello) >= helloInterval {
			e.lastHello = now
			e.sendControl(now, true)
		}
	} else if now.Sub(e.lastSend) >= keepaliveInterval {
		e.sendControl(now, false, wire.Record{Type: wire.RecordPing})
	}
}
