package carp

// The receive side of a virtual host: the input checks that run on the
// interface readers' goroutines before anything is queued (Deliver,
// admit), carpd's counter rules (rxGuard), and the drop counters and
// their rate-limited log.

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// dropCounters are the receive drops, counted by the interface readers
// before anything is queued; Status reads them, so a flood costs no status
// publication per packet.
type dropCounters struct {
	badChecksum, badHMAC, badTTL, badVersion, ownPacket atomic.Uint64
	overflow, stale, timing, downgrade                  atomic.Uint64
}

func (d *dropCounters) fill(c *Counters) {
	c.BadChecksum, c.BadHMAC, c.BadTTL = d.badChecksum.Load(), d.badHMAC.Load(), d.badTTL.Load()
	c.BadVersion, c.OwnPacket, c.Dropped = d.badVersion.Load(), d.ownPacket.Load(), d.overflow.Load()
	c.StaleSequence, c.TimingMismatch, c.Downgrade = d.stale.Load(), d.timing.Load(), d.downgrade.Load()
}

// rxPacket is one received IP packet of protocol 112 for this vhid.
type rxPacket struct {
	src, dst netip.Addr
	ttl      int
	payload  []byte
}

// rxAdvert is an advert that passed every input check.
type rxAdvert struct {
	src netip.Addr
	a   Advert
}

// inboxLen bounds the queue between the interface readers and a vhost.
// Only adverts that passed every check, HMAC and sequence included, are
// queued (admit), so junk never takes a slot a peer's advert needs; a
// full queue means authenticated adverts faster than a vhost handles them.
const inboxLen = 64

// Bounds of the per-source state of the carpd counter checks.
const (
	// maxSeqPeers bounds the sources remembered per vhid. Only a source
	// heard in carpd format with a valid marker for its own address gets
	// an entry, so this is the number of carpd peers, not of senders.
	maxSeqPeers = 64
	// seqPeerExpiry: a source silent this long is forgotten, well within
	// the half of the sequence space that serial arithmetic compares
	// (2^23 units of seqUnit, 12 days).
	seqPeerExpiry = 24 * time.Hour
	// dropLogEvery rate-limits the debug log of dropped adverts.
	dropLogEvery = time.Second
)

// seqPeer is what the receiver remembers of one carpd-format source.
type seqPeer struct {
	seq  uint32
	seen time.Time
}

// rxGuard holds the receive-side checks' state. The interface readers call
// admit concurrently (IPv4 and IPv6), the vhost goroutine sends with seq:
// mu guards it all.
type rxGuard struct {
	mu      sync.Mutex
	auth    *Auth
	secure  bool // a password is set: without one nothing is authenticated
	peers   map[netip.Addr]*seqPeer
	markers map[netip.Addr]uint16 // cache of Auth.Marker
	seq     uint32                // last sequence sent or heard (Lamport)
	started bool                  // seq is set
	logAt   time.Time             // last debug log of a drop
	logged  uint64                // drops not logged since
}

// Deliver checks an advert received for this vhid from src to dst with
// the given TTL (hop limit) on the caller's goroutine, and queues it for
// the vhost only if it passes; it never blocks and does not keep payload.
// Iface's readers call it; so does carptest's segment.
func (v *VHost) Deliver(src, dst netip.Addr, ttl int, payload []byte) {
	v.deliver(rxPacket{src: src, dst: dst, ttl: ttl, payload: payload})
}

func (v *VHost) deliver(p rxPacket) {
	a, ok := v.admit(p)
	if !ok {
		return
	}
	select {
	case v.inbox <- rxAdvert{src: p.src, a: a}:
	default:
		v.drops.overflow.Add(1)
	}
}

// admit applies the input checks in the BSD order
// (docs/carp-protocol.md#input-checks): TTL, length, checksum, version, own
// packet, HMAC; then carpd's counter checks. It counts a drop by reason and
// reports whether the advert may be used.
func (v *VHost) admit(p rxPacket) (Advert, bool) {
	var a Advert
	var c *atomic.Uint64
	var why string
	switch err := a.UnmarshalBinary(p.payload); {
	case p.ttl != TTL:
		c, why = &v.drops.badTTL, "bad TTL"
	case errors.Is(err, ErrBadChecksum):
		c, why = &v.drops.badChecksum, "bad checksum"
	case err != nil:
		c, why = &v.drops.badVersion, "bad version or length"
	case v.tx.IsLocal(p.src):
		c, why = &v.drops.ownPacket, "own address"
	}
	if c != nil {
		c.Add(1)
		v.logDrop(p, why)
		return a, false
	}
	v.rx.mu.Lock()
	defer v.rx.mu.Unlock()
	if !v.rx.auth.Verify(a.Counter, a.HMAC) {
		v.drops.badHMAC.Add(1)
		v.logDropLocked(p, "bad HMAC")
		return a, false
	}
	if why := v.rx.checkCounter(&a, p.src, v.clk.Now(), &v.drops); why != "" {
		v.logDropLocked(p, why)
		return a, false
	}
	return a, true
}

// checkCounter applies the carpd counter rules to an authenticated advert
// from src (docs/carp-authentication.md) and returns why it is refused, or
// "". An advert is in carpd format when its marker is the one src's
// address gets under this password and its clear timing is the timing in
// the counter. A source heard in carpd format is remembered: from then on
// every advert from it must be in carpd format with a newer sequence.
// Adverts of sources never heard in carpd format (BSD and ucarp peers) pass
// as before. mu is held.
func (g *rxGuard) checkCounter(a *Advert, src netip.Addr, now time.Time, d *dropCounters) string {
	if !g.secure {
		return "" // no password: the HMAC key is public, nothing to check
	}
	src = src.WithZone("").Unmap()
	c := DecodeCounter(a.Counter)
	marker, ok := g.markers[src]
	if !ok {
		if len(g.markers) >= maxSeqPeers {
			g.markers = nil
		}
		if g.markers == nil {
			g.markers = map[netip.Addr]uint16{}
		}
		marker = g.auth.Marker(src)
		g.markers[src] = marker
	}
	carpd := markerEqual(c.Marker, marker)
	p := g.peers[src]
	if p != nil && now.Sub(p.seen) > seqPeerExpiry {
		delete(g.peers, src)
		p = nil
	}
	switch {
	case carpd && c.TimingMatches(a):
		if p != nil && !seqNewer(c.Seq, p.seq) {
			d.stale.Add(1)
			return "sequence not newer (replay)"
		}
		if p == nil {
			g.evictLocked()
			p = &seqPeer{}
			g.peers[src] = p
		}
		p.seq, p.seen = c.Seq, now
		if g.started {
			g.seq = seqMax(g.seq, c.Seq)
		} else {
			g.seq, g.started = seqMax(seqClock(now), c.Seq), true
		}
		return ""
	case p == nil:
		return "" // a BSD-format peer
	case carpd:
		d.timing.Add(1)
		return "clear timing differs from the counter's (rewritten)"
	default:
		d.downgrade.Add(1)
		return "BSD-format counter from a carpd peer (downgrade)"
	}
}

// evictLocked makes room for one more source by forgetting the one heard
// longest ago.
func (g *rxGuard) evictLocked() {
	if len(g.peers) < maxSeqPeers {
		return
	}
	var old netip.Addr
	var at time.Time
	for a, p := range g.peers {
		if !old.IsValid() || p.seen.Before(at) {
			old, at = a, p.seen
		}
	}
	delete(g.peers, old)
}

// nextSeq returns the sequence of the next advert: past everything sent
// or heard on this vhid (a Lamport clock, so a restarted node that heard
// its peer continues above it) and at least the clock floor (so a restarted
// node continues above what it sent before its restart).
func (g *rxGuard) nextSeq(now time.Time) uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		g.seq = seqMax((g.seq+1)&seqMask, seqClock(now))
	} else {
		g.seq, g.started = seqClock(now), true
	}
	return g.seq
}

func (v *VHost) logDrop(p rxPacket, why string) {
	v.rx.mu.Lock()
	defer v.rx.mu.Unlock()
	v.logDropLocked(p, why)
}

// logDropLocked logs a dropped advert at debug level, at most once per
// dropLogEvery with the number left out, so that a flood does not turn
// into a flood of log lines.
func (v *VHost) logDropLocked(p rxPacket, why string) {
	now := v.clk.Now()
	if now.Sub(v.rx.logAt) < dropLogEvery {
		v.rx.logged++
		return
	}
	v.log.Debug("advert dropped", "peer", p.src, "ttl", p.ttl, "len", len(p.payload), "reason", why,
		"not_logged", v.rx.logged)
	v.rx.logAt, v.rx.logged = now, 0
}
