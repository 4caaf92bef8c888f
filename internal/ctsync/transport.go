package ctsync

// Reliable delivery: frames out within the byte cap, acknowledgements
// (cumulative and selective), RTT, loss detection and retransmission.

import (
	"sort"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

// sentRec is one flow carried by an unacknowledged frame.
type sentRec struct {
	id   uint64
	slot uint32
	ver  uint32
	del  bool
}

type inflight struct {
	at     time.Time
	recs   []sentRec
	leases []leaseSent // leases.go
}

// payloadLimit is the record stream that fits one datagram.
func (e *Engine) payloadLimit() int {
	return e.cfg.MTU - wire.HelloHeaderLen - 16 // header and AEAD tag
}

// canSend: the session is up and the peer is not silent. A silent peer
// (dead, or the link is) gets nothing: what is dirty stays dirty until it
// answers again, rather than going out, and out again at every
// retransmission timeout, to nobody; after a takeover that is the whole
// table.
func (e *Engine) canSend(now time.Time) bool {
	return e.sess.Established() && now.Sub(e.lastRecv) < e.peerDead
}

// flush sends the dirty flows of priority upTo and more urgent, most urgent
// first, within the byte cap.
func (e *Engine) flush(now time.Time, upTo int8) {
	if !e.canSend(now) {
		return
	}
	var enc wire.Encoder
	for n := 0; n < maxFramesPerFlush; n++ {
		if e.lim != nil && e.lim.TokensAt(now) < float64(e.cfg.MTU+udpIPOverhead) {
			return // the cap: what is left stays dirty and coalesces further
		}
		enc.Limit = e.payloadLimit()
		if cap(e.encBuf) < e.cfg.MTU {
			e.encBuf = make([]byte, 0, e.cfg.MTU)
		}
		enc.Reset(e.encBuf[:0])
		nrec := 0
		if e.ackDue && (n > 0 || e.ackNow(now) || e.pending(upTo)) {
			ack := e.ack()
			if enc.Append(&ack) == nil {
				e.ackDue, e.ackFrames = false, 0
				nrec++
			}
		}
		recs := make([]sentRec, 0, 32) // kept by inflight: one per frame
		full := false
		for p := int8(0); p <= upTo && !full; p++ {
			q := e.queues[p]
			i := 0
			for ; i < len(q); i++ {
				l := e.local.get(q[i])
				if l == nil || l.m.dirty != p {
					continue // stale entry: sent since, or requeued higher
				}
				if p == prioUrgent && newPrio(l) != prioUrgent {
					// Closed since it was queued: it waits for the window.
					l.m.dirty = prioNew
					e.queues[prioNew] = append(e.queues[prioNew], q[i])
					continue
				}
				r := e.record(q[i], l, p)
				if err := enc.Append(&r); err != nil {
					full = true
					break
				}
				l.m.dirty, l.m.sent, l.m.sentVer = prioNone, true, l.m.ver
				recs = append(recs, sentRec{id: l.m.id, slot: q[i], ver: l.m.ver, del: l.m.deleted})
			}
			e.queues[p] = q[i:]
		}
		if enc.Len() == 0 {
			break
		}
		pn, ok := e.send(enc.Bytes(), now, false)
		if ok {
			nrec += len(recs)
			e.count(func(c *Counters) { c.FlowsSent += uint64(nrec) })
		}
		if ok && len(recs) > 0 {
			e.inflight[pn] = &inflight{at: now, recs: recs}
		}
		if !ok {
			// The frame never left: its flows are dirty again.
			for _, r := range recs {
				if l := e.sentFlow(r); l != nil {
					e.mark(r.slot, l, prioUrgent)
				}
			}
			return
		}
		if !full {
			break
		}
	}
	for p := range e.queues {
		if len(e.queues[p]) == 0 {
			e.queues[p] = nil // let a large bulk queue's array go
		}
	}
}

// ackNow: an acknowledgement is due on its own, in a frame without
// records if need be. Otherwise it waits to ride with records: ackDelay
// after the first frame it acknowledges, or ackEvery frames.
func (e *Engine) ackNow(now time.Time) bool {
	delay := ackDelay
	if e.ackLazy {
		delay = lazyAckDelay
	}
	return e.ackDue && (now.Sub(e.ackSince) >= delay || e.ackFrames >= ackEvery)
}

// lazyFrame: in carried only leases, whose acknowledgement the peer may
// hold back for lazyAckDelay.
func lazyFrame(in *inflight) bool {
	return len(in.recs) == 0 && len(in.leases) > 0
}

// pending: some flow is queued at priority upTo or more urgent (perhaps
// a stale entry: then a frame may go with only an acknowledgement).
func (e *Engine) pending(upTo int8) bool {
	for p := int8(0); p <= upTo; p++ {
		if len(e.queues[p]) > 0 {
			return true
		}
	}
	return false
}

// send seals payload (a HELLO if hello) and writes it to the peer.
func (e *Engine) send(payload []byte, now time.Time, hello bool) (uint64, bool) {
	var frame []byte
	var pn uint64
	var err error
	if hello {
		frame, pn, err = e.sess.SealHello(make([]byte, 0, e.cfg.MTU), payload)
	} else {
		if n := len(payload) + wire.Overhead; cap(e.frameBuf) < n {
			e.frameBuf = make([]byte, 0, max(n, e.cfg.MTU))
		}
		frame, pn, err = e.sess.Seal(e.frameBuf[:0], payload)
	}
	if err == nil {
		_, err = e.conn.WriteTo(frame, e.to)
	}
	if err != nil {
		e.count(func(c *Counters) { c.SendErrors++ })
		e.log.Debug("sending a frame", "err", err)
		return 0, false
	}
	if e.lim != nil {
		e.lim.ReserveN(now, len(frame)+udpIPOverhead)
	}
	e.lastSend = now
	e.count(func(c *Counters) {
		c.FramesSent++
		c.BytesSent += uint64(len(frame) + udpIPOverhead)
	})
	return pn, true
}

// ack describes what we received of the peer's frames.
func (e *Engine) ack() wire.Record {
	a := wire.Ack{Cum: e.recvCum}
	above := make([]uint64, 0, len(e.recvAbove))
	for pn := range e.recvAbove {
		above = append(above, pn)
	}
	sort.Slice(above, func(i, j int) bool { return above[i] < above[j] })
	for _, pn := range above {
		n := len(a.Ranges)
		if n > 0 && a.Ranges[n-1].Last+1 == pn {
			a.Ranges[n-1].Last = pn
			continue
		}
		a.Ranges = append(a.Ranges, wire.AckRange{First: pn, Last: pn})
	}
	// The newest ranges: a lost frame's number never comes (its flows go
	// again in new frames), so Cum stays below the first loss for good
	// and the oldest ranges would soon be all the ack ever says.
	if n := len(a.Ranges); n > maxSACKRanges {
		a.Ranges = a.Ranges[n-maxSACKRanges:]
	}
	return wire.Record{Type: wire.RecordAck, Ack: a}
}

// sendControl sends records in a frame of their own, outside the cap
// (they are tiny and keep the session alive).
func (e *Engine) sendControl(now time.Time, hello bool, recs ...wire.Record) {
	var enc wire.Encoder
	enc.Reset(make([]byte, 0, 256))
	nrec := 0
	if hello {
		nrec++ // the session puts its HELLO record first
	}
	if e.ackDue {
		ack := e.ack()
		if enc.Append(&ack) == nil {
			e.ackDue, e.ackFrames = false, 0
			nrec++
		}
	}
	for i := range recs {
		if err := enc.Append(&recs[i]); err != nil {
			e.log.Error("encoding a control record", "err", err)
			continue
		}
		nrec++
	}
	if _, ok := e.send(enc.Bytes(), now, hello); ok {
		e.count(func(c *Counters) { c.FlowsSent += uint64(nrec) })
	}
}

func (e *Engine) rto() time.Duration {
	if e.srtt == 0 {
		return time.Second + e.cfg.Window
	}
	return min(max(e.srtt+4*e.rttvar, minRTO), maxRTO) + e.cfg.Window
}

// detectLoss marks the flows of lost frames dirty again: a frame is lost
// when three later ones were acknowledged, or after the retransmission
// timeout. Only flows whose newest sent state was in that frame are resent,
// and with their current state, not the old bytes (FTFW semantics).
//
// The timeout is TCP's (RFC 6298): one timer, restarted whenever an
// acknowledgement covers something new; when it expires only the oldest
// frame is taken for lost, and the timeout doubles (up to maxRTO) until
// acknowledgements come again. A peer that stalls for a second under a
// burst (it injects while a burst arrives) then costs one frame again,
// not the whole flight, and a dead peer one frame per timeout.
func (e *Engine) detectLoss(now time.Time) {
	rto := min(e.rto()<<e.backoff, maxRTO+e.cfg.Window)
	expired := now.Sub(e.lastProgress) >= rto
	var oldest uint64
	var oldestAt time.Time
	for pn, in := range e.inflight {
		if pn+3 <= e.maxAcked {
			e.lost(pn, in) // three later frames acknowledged
			continue
		}
		wait := rto
		if lazyFrame(in) {
			wait += lazyAckDelay
		}
		if expired && now.Sub(in.at) >= wait && (oldestAt.IsZero() || in.at.Before(oldestAt) || (in.at.Equal(oldestAt) && pn < oldest)) {
			oldest, oldestAt = pn, in.at
		}
	}
	if !oldestAt.IsZero() {
		e.lost(oldest, e.inflight[oldest])
		e.lastProgress = now // the timer restarts, doubled
		e.backoff = min(e.backoff+1, 5)
	}
}

// lost marks the flows of frame pn dirty again: only those whose newest
// sent state was in it, to go with their current state, not the old bytes
// (FTFW semantics).
func (e *Engine) lost(pn uint64, in *inflight) {
	delete(e.inflight, pn)
	e.leasesLost(in)
	for _, r := range in.recs {
		l := e.sentFlow(r)
		if l == nil || l.m.sentVer != r.ver || l.m.dirty != prioNone {
			continue
		}
		e.count(func(c *Counters) { c.Retransmits++ })
		if l.m.deleted || !l.m.known {
			e.mark(r.slot, l, newPrio(l))
		} else {
			e.mark(r.slot, l, prioUpdate)
		}
	}
}

// sentFlow returns the flow r carried, if its slot still holds it.
func (e *Engine) sentFlow(r sentRec) *lflow {
	if l := e.local.get(r.slot); l != nil && l.m.id == r.id {
		return l
	}
	return nil
}

// acked processes the peer's acknowledgement of our frames.
func (e *Engine) acked(a wire.Ack, now time.Time) {
	got := func(pn uint64) bool {
		if pn < a.Cum {
			return true
		}
		for _, r := range a.Ranges {
			if pn >= r.First && pn <= r.Last {
				return true
			}
		}
		return false
	}
	for pn, in := range e.inflight {
		if !got(pn) {
			continue
		}
		delete(e.inflight, pn)
		e.maxAcked = max(e.maxAcked, pn)
		e.lastProgress, e.backoff = now, 0
		// A lazy frame's acknowledgement may have been held back: it
		// says nothing of the round trip.
		if !lazyFrame(in) {
			e.rttSample(now.Sub(in.at))
		}
		e.leasesAcked(in)
		for _, r := range in.recs {
			l := e.sentFlow(r)
			if l == nil {
				continue
			}
			if r.del {
				e.local.remove(r.slot) // the peer has deleted it: done
				continue
			}
			l.m.known = true
		}
	}
	e.mu.Lock()
	e.st.LastAck = now
	e.mu.Unlock()
}

// rttSample updates the smoothed round-trip time (RFC 6298).
func (e *Engine) rttSample(sample time.Duration) {
	if e.srtt == 0 {
		e.srtt, e.rttvar = sample, sample/2
		return
	}
	d := e.srtt - sample
	if d < 0 {
		d = -d
	}
	e.rttvar = (3*e.rttvar + d) / 4
	e.srtt = (7*e.srtt + sample) / 8
}

// received records a peer packet number for our acknowledgements.
// Only ack-eliciting frames (any record but ACK) arm an acknowledgement:
// acknowledging acknowledgements would have two idle peers send each
// other an ACK every window forever.
func (e *Engine) received(pn uint64) {
	if pn < e.recvCum || e.recvAbove[pn] {
		return
	}
	if pn != e.recvCum {
		if len(e.recvAbove) >= maxRecvAbove && pn > maxRecvAbove/2 {
			// Forget the oldest half rather than every frame to come:
			// the acks are about the newest.
			cut := pn - maxRecvAbove/2
			for p := range e.recvAbove {
				if p < cut {
					delete(e.recvAbove, p)
				}
			}
		}
		e.recvAbove[pn] = true
		return
	}
	e.recvCum++
	for e.recvAbove[e.recvCum] {
		delete(e.recvAbove, e.recvCum)
		e.recvCum++
	}
}
