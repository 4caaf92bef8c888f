package ctsync

// Frames in: the socket reader goroutine, and the engine's handling of
// one frame's records.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/carpd/carpd/ctsync/flow"
	"github.com/carpd/carpd/ctsync/wire"
)

func (e *Engine) read() {
	defer e.wg.Done()
	// One byte more than the largest frame: a datagram that fills the
	// buffer is too large (the rest of it is cut off unread).
	limit := max(maxDatagram, e.cfg.MTU)
	buf := make([]byte, limit+1)
	for {
		n, from, err := e.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !e.fromPeer(from) {
			e.count(func(c *Counters) { c.DropSource++ })
			continue
		}
		if n > limit {
			e.count(func(c *Counters) { c.DropOversize++ })
			continue
		}
		select {
		case e.recv <- append([]byte(nil), buf[:n]...):
		default:
			e.count(func(c *Counters) { c.DropQueue++ })
		}
	}
}

// fromPeer: with a unicast peer only its address is accepted; with a
// multicast group, any source (the AEAD decides).
func (e *Engine) fromPeer(a net.Addr) bool {
	if e.cfg.Peer.Addr().IsMulticast() {
		return true
	}
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return false
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	return ip.Unmap() == e.cfg.Peer.Addr().Unmap()
}

func (e *Engine) receive(ctx context.Context, b []byte, now time.Time) {
	op, err := e.sess.Open(nil, b)
	if errors.Is(err, wire.ErrStaleEpoch) {
		op, err = e.staleSession(b, now)
	}
	if err != nil {
		e.count(func(c *Counters) {
			switch {
			case errors.Is(err, wire.ErrAuth):
				c.DropAuth++
			case errors.Is(err, wire.ErrReplay):
				c.DropReplay++
			case errors.Is(err, wire.ErrStaleEpoch), errors.Is(err, wire.ErrUnknownEpoch), errors.Is(err, wire.ErrNoPeer):
				c.DropEpoch++
			default:
				c.DropMalformed++
			}
		})
		if errors.Is(err, wire.ErrUnknownEpoch) || errors.Is(err, wire.ErrNoPeer) {
			e.lastHello = time.Time{} // answer with our HELLO at once
		}
		e.log.Debug("frame dropped", "err", err)
		return
	}
	e.count(func(c *Counters) {
		c.FramesReceived++
		c.BytesReceived += uint64(len(b) + udpIPOverhead)
	})
	e.lastRecv, e.lastAuthentic = now, now
	if op.NewPeer {
		e.newPeer(now)
		// The peer's packet numbers count its HELLOs from before we were
		// listening: acknowledge from this, the first frame of its session.
		e.recvCum = op.Header.PN
	}
	e.received(op.Header.PN)
	if op.WantHello {
		e.sendControl(now, true)
	}

	var apply []flow.Flow
	var applied []sentRec // the peer table slot of each flow in apply
	var dels []flow.Key
	var nrec uint64
	elicits := false
	err = wire.DecodeRecords(op.Payload, func(r *wire.Record) error {
		nrec++
		if r.Type != wire.RecordAck && !elicits {
			elicits = true
			if !e.ackDue {
				e.ackDue, e.ackSince, e.ackFrames = true, now, 0
			}
			e.ackFrames++
		}
		switch r.Type {
		case wire.RecordNew:
			if r.Flow.Valid() != nil {
				e.count(func(c *Counters) { c.DropInvalid++ })
				return nil
			}
			c, ok := packFlow(&r.Flow)
			if !ok {
				e.count(func(c *Counters) { c.DropInvalid++ })
				return nil
			}
			if slot, ok := e.peerIDs[r.ID]; ok {
				if p := e.peer.at(slot); r.Version <= p.m.ver && r.Version != 0 {
					return nil // stale or duplicate
				}
			}
			out := !e.admit(&r.Flow)
			if !out {
				c.c.timeout = r.Flow.Timeout
			}
			e.dropPeer(r.ID)
			if _, ok := e.peer.lookup(c.key()); !ok && e.peer.Len() >= e.cfg.MaxPeerFlows {
				e.count(func(c *Counters) { c.DropPeerFull++ })
				return nil
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
					e.displaced[c.key()] = e.peer.flow(slot).Reply
				}
				e.removePeer(slot)
			}
			delete(e.wanted, r.ID)
			slot := e.peer.insert(&c, pmeta{id: r.ID, ver: r.Version, confirmed: now.UnixNano(), out: out})
			e.peerIDs[r.ID] = slot
			if !out {
				apply = append(apply, e.peer.flow(slot))
				applied = append(applied, sentRec{id: r.ID, slot: slot})
			}
		case wire.RecordUpdate, wire.RecordRefresh:
			slot, ok := e.peerIDs[r.ID]
			if !ok {
				e.count(func(c *Counters) { c.DropUnknownID++ })
				// Not when the table is full: the flow would be dropped
				// again, and asked for again, forever.
				if len(e.wanted) < maxWanted && e.peer.Len() < e.cfg.MaxPeerFlows {
					e.wanted[r.ID] = struct{}{}
				}
				return nil
			}
			p := e.peer.at(slot)
			if r.Type == wire.RecordUpdate && r.Version <= p.m.ver && r.Version != 0 {
				return nil
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
					return nil // the injected version, if any, stays
				}
				p.f.status, p.f.mark = f.Status, f.Mark
				p.f.tcp = [5]uint8{f.TCPState, f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply}
				p.m.out = false // admitted now: inject it
			}
			if p.m.out {
				return nil
			}
			f := e.peer.flow(slot)
			f.Timeout = r.Flow.Timeout
			e.clamp(&f)
			p.f.timeout = f.Timeout
			apply = append(apply, f)
			applied = append(applied, sentRec{id: r.ID, slot: slot})
		case wire.RecordDelete:
			if slot, ok := e.peerIDs[r.ID]; ok {
				p := e.peer.at(slot)
				delete(e.peerIDs, r.ID)
				p.m.gone = true
				e.peerGone = append(e.peerGone, goneRef{slot: slot, id: r.ID, at: now})
				if !p.m.out {
					dels = append(dels, e.peer.flowKey(slot))
				}
			}
		case wire.RecordAck:
			e.acked(r.Ack, now)
		case wire.RecordBulkReq:
			e.startServing(now)
		case wire.RecordBulkEnd:
			e.bulkEnd(r.Bulk, now)
		case wire.RecordWant:
			e.resend(r.Want)
		}
		return nil
	})
	if err != nil {
		e.count(func(c *Counters) { c.DropMalformed++ })
	}
	e.count(func(c *Counters) { c.FlowsReceived += nrec })
	if len(apply) > 0 {
		for i, err := range e.k.Inject(ctx, apply, e.injected) {
			switch {
			case err == nil:
			case errors.Is(err, flow.ErrLocalClash):
				// Ours stays; so does the peer's in our table, out of
				// the kernel, so that its DELETE leaves ours alone.
				e.count(func(c *Counters) { c.RefusedClash++ })
				if p := e.peer.get(applied[i].slot); p != nil && p.m.id == applied[i].id {
					p.m.out = true
				}
			default:
				e.count(func(c *Counters) { c.ApplyErrors++ })
				e.log.Debug("injecting a flow", "err", err)
			}
		}
	}
	clear(e.displaced)
	if len(dels) > 0 {
		if err := e.k.Delete(ctx, dels); err != nil {
			e.count(func(c *Counters) { c.ApplyErrors++ })
		}
	}
}
