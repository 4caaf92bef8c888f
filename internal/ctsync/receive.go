package ctsync

// Frames in: the socket reader goroutine, and the engine's handling of
// one frame's records.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
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

	var job applyJob
	var nrec uint64
	elicits := false
	err = wire.DecodeRecords(op.Payload, func(r *wire.Record) error {
		nrec++
		// CARP states are not acknowledged (they go again anyway).
		if r.Type != wire.RecordAck && r.Type != wire.RecordCarp {
			if !elicits {
				elicits = true
				if !e.ackDue {
					e.ackDue, e.ackSince, e.ackFrames, e.ackLazy = true, now, 0, true
				}
				e.ackFrames++
			}
			if r.Type != wire.RecordLease {
				e.ackLazy = false
			}
		}
		switch r.Type {
		case wire.RecordNew:
			e.peerNew(r, now, &job)
		case wire.RecordUpdate, wire.RecordRefresh:
			e.peerUpdate(r, now, &job)
		case wire.RecordDelete:
			e.peerDelete(r, now, &job)
		case wire.RecordAck:
			e.acked(r.Ack, now)
		case wire.RecordBulkReq:
			e.startServing(now)
		case wire.RecordBulkEnd:
			e.bulkEnd(ctx, r.Bulk, now)
		case wire.RecordWant:
			e.resend(r.Want)
		case wire.RecordCarp:
			e.peerCarp(r.Carp, now)
		case wire.RecordLease:
			e.peerLease(r.Lease)
		case wire.RecordConfig, wire.RecordConfigAck:
			if e.cfg.OnConfig != nil {
				e.cfg.OnConfig(r)
			}
		}
		return nil
	})
	if err != nil {
		e.count(func(c *Counters) { c.DropMalformed++ })
		if errors.Is(err, wire.ErrConfig) && e.cfg.OnConfig != nil {
			e.cfg.OnConfig(nil) // counted by the config sync too
		}
		e.leaseDecodeError(err)
	}
	e.count(func(c *Counters) { c.FlowsReceived += nrec })
	if len(job.inject) > 0 || len(job.del) > 0 {
		job.delErr = e.countApplyError
		e.apply(ctx, job)
	}
}
