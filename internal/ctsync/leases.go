package ctsync

// DHCP lease sync (docs/sync-protocol.md#dhcp-leases): the daemon hands
// the engine its whole local lease set whenever dnsmasq's file changes;
// the engine sends what changed as LEASE records, one per lease event, in
// frames of their own that are acknowledged and sent again when lost (the
// current state of the lease, as for flows), within the byte cap. At
// every new session with the peer the whole set goes again (the bulk).
// The peer's events are queued for the daemon, which merges them into its
// file.

import (
	"errors"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/leases"
)

// maxLeaseIn bounds the peer's events waiting for the daemon; more are
// dropped and counted (the next bulk repairs them).
const maxLeaseIn = 1 << 16

// leaseOut is one of our leases as the engine sends it.
type leaseOut struct {
	ev      leases.Event
	ver     uint32 // bumped at every change
	sentVer uint32 // the version of the last send; 0: never
	dirty   bool
	// peer: the peer told us of it and our set has not held it since;
	// its absence from our set is no release of ours.
	peer bool
}

// leaseSent is one lease carried by an unacknowledged frame.
type leaseSent struct {
	addr netip.Addr
	ver  uint32
}

// leaseSync is the engine's lease state: out and ndirty are Run's, the
// rest is guarded by Engine.mu.
type leaseSync struct {
	out    map[netip.Addr]*leaseOut
	ndirty int // entries of out with dirty set

	set     leases.Set // the daemon's newest set, not yet diffed (nil: none)
	in      []leases.Event
	notify  chan struct{}
	st      LeaseCounters
	started bool
}

// LeaseCounters count the engine's lease sync.
type LeaseCounters struct {
	Local    int    // leases of ours the engine holds
	Sent     uint64 // lease events sent (a retransmission counts again)
	Received uint64 // lease events received
	Refused  map[string]uint64
}

// SetLeases sets this router's lease set; the engine sends what changed
// since the previous call (all of it on the first). Safe from any
// goroutine; it never blocks. s is the caller's no more.
func (e *Engine) SetLeases(s leases.Set) {
	e.mu.Lock()
	e.ls.set = s
	e.mu.Unlock()
}

// LeaseNotify is signalled when the peer's lease events wait in
// LeaseEvents.
func (e *Engine) LeaseNotify() <-chan struct{} { return e.ls.notify }

// LeaseEvents returns the peer's lease events received since the last
// call, in order.
func (e *Engine) LeaseEvents() []leases.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.ls.in
	e.ls.in = nil
	return in
}

// LeaseStatus returns the lease counters.
func (e *Engine) LeaseStatus() LeaseCounters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.ls.st
	c.Refused = make(map[string]uint64, len(e.ls.st.Refused))
	for k, v := range e.ls.st.Refused {
		c.Refused[k] = v
	}
	return c
}

func (e *Engine) leaseRefused(reason string) {
	e.mu.Lock()
	if e.ls.st.Refused == nil {
		e.ls.st.Refused = map[string]uint64{}
	}
	e.ls.st.Refused[reason]++
	e.mu.Unlock()
}

// leaseDecodeError counts a record stream that failed on a LEASE record.
func (e *Engine) leaseDecodeError(err error) {
	switch {
	case errors.Is(err, wire.ErrLeaseSize):
		e.leaseRefused("oversized")
	case errors.Is(err, wire.ErrLease):
		e.leaseRefused("malformed")
	}
}

// peerLease queues an event of the peer for the daemon. The peer has
// the lease as it told it: unless a change of ours waits to go, that is
// what our next set is diffed against, so that what the daemon merges
// into its file from the peer does not go back to it.
func (e *Engine) peerLease(ev leases.Event) {
	if e.ls.out == nil {
		e.ls.out = map[netip.Addr]*leaseOut{}
	}
	a := ev.Lease.Addr
	if e.ls.out[a] == nil && ev.Op != leases.Release && len(e.ls.out) >= leases.MaxLeases+leases.MaxPeerLeases {
		// Ours (at most MaxLeases, a file's) and the peer's: a peer that
		// makes up addresses is held to MaxPeerLeases.
		e.leaseRefused("too_many")
		return
	}
	if o := e.ls.out[a]; o == nil || !o.dirty {
		if ev.Op == leases.Release {
			delete(e.ls.out, a)
		} else {
			if o == nil {
				o = &leaseOut{}
				e.ls.out[a] = o
			}
			o.ev, o.ver = leases.Event{Op: leases.Add, Lease: ev.Lease}, o.ver+1
			o.sentVer, o.peer = o.ver, true
		}
	}
	e.mu.Lock()
	e.ls.st.Received++
	full := len(e.ls.in) >= maxLeaseIn
	if !full {
		e.ls.in = append(e.ls.in, ev)
	}
	e.mu.Unlock()
	if full {
		e.leaseRefused("queue_full")
		return
	}
	select {
	case e.ls.notify <- struct{}{}:
	default:
	}
}

// takeLeases diffs the daemon's newest set into our leases.
func (e *Engine) takeLeases() {
	e.mu.Lock()
	s := e.ls.set
	e.ls.set = nil
	e.mu.Unlock()
	if s == nil {
		return
	}
	if e.ls.out == nil {
		e.ls.out = map[netip.Addr]*leaseOut{}
	}
	for a, l := range s {
		o := e.ls.out[a]
		switch {
		case o == nil:
			o = &leaseOut{}
			e.ls.out[a] = o
		case o.ev.Op != leases.Release && o.ev.Lease == l:
			o.peer = false
			continue
		}
		o.peer = false
		op := leases.Renew
		if o.ver == 0 || o.ev.Op == leases.Release {
			op = leases.Add
		}
		o.ev = leases.Event{Op: op, Lease: l}
		o.ver++
		e.leaseDirty(o)
	}
	for a, o := range e.ls.out {
		if _, ok := s[a]; !ok && o.ev.Op != leases.Release {
			if o.peer && !o.dirty {
				continue // the peer's, never ours: nothing to release
			}
			o.ev.Op = leases.Release
			o.ver++
			e.leaseDirty(o)
		}
	}
	e.mu.Lock()
	e.ls.st.Local = len(s)
	e.mu.Unlock()
}

func (e *Engine) leaseDirty(o *leaseOut) {
	if !o.dirty {
		o.dirty = true
		e.ls.ndirty++
	}
}

// leaseNewPeer queues the whole set for a new session (the bulk), and
// the releases the peer has not acknowledged.
func (e *Engine) leaseNewPeer() {
	for _, o := range e.ls.out {
		if o.peer {
			// The peer's own lease, merged from it: sending it back would
			// bring back a lease the peer released while we were apart.
			continue
		}
		o.sentVer = 0
		if o.ev.Op != leases.Release {
			o.ev.Op = leases.Add
		}
		e.leaseDirty(o)
	}
}

// leaseTimer sends the dirty leases, once a tick: the events of a burst
// share frames.
func (e *Engine) leaseTimer(now time.Time) {
	e.takeLeases()
	if e.ls.ndirty == 0 || !e.canSend(now) {
		return
	}
	var enc wire.Encoder
	var sent []leaseSent
	frames := 0
	for a, o := range e.ls.out {
		if !o.dirty {
			continue
		}
		r := wire.Record{Type: wire.RecordLease, Lease: o.ev}
		if len(sent) == 0 || enc.Append(&r) != nil {
			if len(sent) > 0 {
				if frames++; !e.leaseFrame(now, enc.Bytes(), sent) || frames >= maxFramesPerFlush {
					return
				}
			}
			enc.Limit = e.payloadLimit()
			enc.Reset(make([]byte, 0, e.cfg.MTU))
			sent = nil
			if enc.Append(&r) != nil {
				o.dirty = false // cannot be encoded: never will
				e.ls.ndirty--
				continue
			}
		}
		sent = append(sent, leaseSent{a, o.ver})
	}
	if len(sent) > 0 {
		e.leaseFrame(now, enc.Bytes(), sent)
	}
}

// leaseFrame sends one frame of LEASE records, within the cap; what it
// carries is clean once it is sent.
func (e *Engine) leaseFrame(now time.Time, payload []byte, sent []leaseSent) bool {
	if e.lim != nil && e.lim.TokensAt(now) < float64(e.cfg.MTU+udpIPOverhead) {
		return false // the cap: the rest waits for the next tick
	}
	pn, ok := e.send(payload, now, false)
	if !ok {
		return false
	}
	for _, s := range sent {
		o := e.ls.out[s.addr]
		o.dirty, o.sentVer = false, s.ver
		e.ls.ndirty--
	}
	e.inflight[pn] = &inflight{at: now, leases: sent}
	e.mu.Lock()
	e.ls.st.Sent += uint64(len(sent))
	e.mu.Unlock()
	return true
}

// leasesLost marks the leases of a lost frame dirty again, those whose
// newest send was in it.
func (e *Engine) leasesLost(in *inflight) {
	for _, s := range in.leases {
		if o := e.ls.out[s.addr]; o != nil && o.sentVer == s.ver && !o.dirty {
			e.count(func(c *Counters) { c.Retransmits++ })
			e.leaseDirty(o)
		}
	}
}

// leasesAcked forgets the releases the peer has.
func (e *Engine) leasesAcked(in *inflight) {
	for _, s := range in.leases {
		if o := e.ls.out[s.addr]; o != nil && o.ver == s.ver && !o.dirty && o.ev.Op == leases.Release {
			delete(e.ls.out, s.addr)
		}
	}
}
