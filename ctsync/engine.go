package ctsync

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/ctsync/flow"
	"github.com/carpd/carpd/ctsync/wire"
	"golang.org/x/time/rate"
)

// Kernel is conntrack as the engine uses it. ctsync/kernel implements it
// on Linux (filtering the source to forwarded flows); tests use a fake
// table.
type Kernel interface {
	// Each calls fn with every flow the source would sync (a table dump,
	// streamed: fn must not keep the pointer).
	Each(ctx context.Context, fn func(*flow.Flow)) error
	// Events delivers NEW, UPDATE, DESTROY, and OVERRUN when events were
	// lost (the engine then reconciles from a dump).
	Events() <-chan flow.Event
	// Inject injects or updates flows; one error (or nil) per flow. An
	// entry in a flow's way is replaced only if injected says it came
	// from the peer; else the flow fails with flow.ErrLocalClash.
	Inject(ctx context.Context, flows []flow.Flow, injected func(*flow.Flow) bool) []error
	// Delete removes flows; missing ones are not an error.
	Delete(ctx context.Context, keys []flow.Key) error
}

// Config configures an Engine.
type Config struct {
	Key  [wire.KeyLen]byte
	Name string // sent to the peer in HELLO, for its logs
	// Peer is where frames go: the unicast peer or the multicast group.
	Peer netip.AddrPort
	// Window is the coalescing window: dirty flows are sent at most once
	// per window (NEW and DELETE go first).
	Window time.Duration
	// Refresh: every flow the peer knows is refreshed (its current timeout
	// sent) this often, so long-lived flows never time out on the peer and
	// the peer can tell dead flows from live ones after a takeover.
	Refresh time.Duration
	// BulkTimeout bounds the wait for the peer's table at start.
	BulkTimeout time.Duration
	// Bandwidth caps the bytes per second put on the link (0: no cap).
	Bandwidth uint64
	// MTU is the largest datagram payload (default 1200 bytes).
	MTU int
	// Epoch is this run's session epoch; 0 (the daemon's choice) derives
	// it from the clock (newEpoch). Tests set it to play a clock that went
	// back.
	Epoch uint32
	// Admit is the receiver's own filter: every flow of the peer (NEW or
	// UPDATE) goes through it before it is injected, and a refused one is
	// dropped and counted by reason (refused_*). The daemon passes the
	// same filter its kernel source applies to what it sends
	// (kernel.Conntrack.Admit). nil admits every valid flow.
	Admit func(*flow.Flow) flow.Refusal
	// MaxTimeout is the longest timeout the kernel gives a flow like f
	// (kernel.Conntrack.MaxTimeout); a peer's longer one is cut to it
	// (timeouts_clamped). nil or 0: no limit.
	MaxTimeout func(*flow.Flow) uint32
	// MaxPeerFlows bounds the table of the peer's flows (default
	// DefaultMaxPeerFlows): a NEW beyond it is dropped and counted
	// (drop_peer_table_full), not injected.
	MaxPeerFlows int
	Log          *slog.Logger
	// OnSynced is called (from the engine goroutine, so it must not block)
	// when the initial bulk transfer from the peer completed or timed out.
	OnSynced func()
}

// DefaultMaxPeerFlows is Config.MaxPeerFlows's default: more flows than
// a router with 256 MB of RAM holds (nf_conntrack_max is 65536 there).
const DefaultMaxPeerFlows = 1 << 18

// Engine defaults and bounds.
const (
	defaultMTU        = 1200
	udpIPOverhead     = 28 // IPv4 + UDP headers, counted against the cap
	helloInterval     = time.Second
	keepaliveInterval = 5 * time.Second
	peerDeadAfter     = 3 * keepaliveInterval
	minRTO            = 200 * time.Millisecond
	maxRTO            = 5 * time.Second
	bulkEndRetry      = time.Second
	maxFramesPerFlush = 256  // bounds one flush; the rest goes next window
	recvQueueLen      = 2048 // frames waiting for the engine; a bulk burst fills hundreds
	// maxDatagram bounds what is read off the socket before it is
	// authenticated: our frames are at most MTU bytes (1200 by default),
	// so with the queue above at most 4 MiB waits for the engine. A larger
	// datagram is dropped (drop_oversize).
	maxDatagram = 2048
	maxDrain    = 256 // queued frames a tick takes in before loss detection
	// urgentWindow: a new established flow waits at most this long (or
	// the window, if shorter), whatever the window for the rest
	// (docs/sync-protocol.md#priorities-and-coalescing); see newPrio. Acknowledgements go with the window's flush.
	urgentWindow  = 20 * time.Millisecond
	maxSACKRanges = 16
	// publishWalk: how often Status's counts that walk the table (synced,
	// pending) are refreshed; the table sizes are kept at every tick.
	publishWalk = 250 * time.Millisecond
	// An acknowledgement rides with records when there are some; alone,
	// it waits ackDelay, so that a stream of small frames is not answered
	// frame for frame (the retransmission timeout allows for it), or,
	// in a burst, until ackEvery frames are due and urgentWindow passed.
	ackDelay     = 200 * time.Millisecond
	ackEvery     = 16
	maxRecvAbove = 4096 // received packet numbers kept above recvCum
	purgeGrace   = 10 * time.Second
	// Anti-entropy. wantInterval: how often a WANT goes for flows the
	// peer updates or refreshes but we lack (at most wire.MaxWant ids
	// each, maxWanted kept). staleRefreshes: a flow of the peer it has
	// not confirmed (NEW, UPD, REFRESH) for this many refresh periods,
	// with the session up all along, is gone there: its DELETE was lost.
	wantInterval   = time.Second
	maxWanted      = 4096
	staleRefreshes = 5
	// peerGoneFor: how long the key of a flow the peer deleted stays
	// known, for the kernel events of our own writes that come late.
	peerGoneFor = 5 * time.Second
	// confirmFlag marks a BULK_END sent back by the receiver to confirm
	// the sender's BULK_END of the same sequence.
	confirmFlag = uint64(1) << 63
)

// Priorities of dirty flows: lower goes first (docs/sync-protocol.md#priorities-and-coalescing).
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

// sentRec is one flow carried by an unacknowledged frame.
type sentRec struct {
	id   uint64
	slot uint32
	ver  uint32
	del  bool
}

type inflight struct {
	at   time.Time
	recs []sentRec
}

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

// Engine replicates conntrack state between two routers. One goroutine
// (Run) owns all of its state; Status, Resync and Takeover talk to it
// through channels.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	k    Kernel
	conn net.PacketConn
	sess *wire.Session
	lim  *rate.Limiter // nil: no cap

	cmds chan func()
	recv chan []byte
	wg   sync.WaitGroup

	// Owned by Run.
	local    *table[lmeta]
	nextID   uint64
	queues   [numPrios][]uint32 // slots of local
	inflight map[uint64]*inflight
	maxAcked uint64
	// lastProgress: when an acknowledgement last covered a frame in flight
	// (or the retransmission timer last expired); backoff: how often it
	// expired since (the timeout doubles each time).
	lastProgress time.Time
	backoff      uint
	srtt         time.Duration
	rttvar       time.Duration

	// peer holds the peer's flows and, for a while, the ones it deleted
	// lately (peerGone, oldest first): the kernel's events about our own
	// writes may still be on their way. peerIDs maps the peer's flow ids
	// to slots of peer (the gone ones are not in it).
	peer     *table[pmeta]
	peerIDs  map[uint64]uint32
	peerGone []goneRef
	adopting bool // upsert takes the peer's flows as ours (Takeover)
	// holding: the engine is taking in the kernel's table at start. Its
	// flows are held, not sent, until the peer's table is in: a carpd
	// restarted on a backup finds the peer's flows it injected before,
	// which are not its to send back. Those the peer's table brings are
	// dropped from ours; the rest are sent as ours when the bulk transfer
	// ends (release).
	holding bool
	wanted  map[uint64]struct{} // ids of peer flows we lack (anti-entropy)
	// displaced: during one receive, the reply tuples of the peer's
	// flows that a NEW replaced in the peer table (by key): the kernel
	// entries in the new flow's way that came from the peer (injected).
	displaced map[ckey]flow.Tuple
	peerOut   int // flows of the peer not in our kernel (out), at the last walk
	lastWant  time.Time
	peerSince time.Time       // when the peer's current session began
	recvCum   uint64          // lowest peer packet number not yet received
	recvAbove map[uint64]bool // received packet numbers above recvCum
	ackDue    bool
	ackSince  time.Time // when ackDue was set
	ackFrames int       // frames to acknowledge since then
	// urgentSince: when urgent work (a new established flow) last
	// became pending; zero when none waits.
	urgentSince time.Time
	lastRecv    time.Time
	// lastAuthentic: when a frame that authenticates came from the peer,
	// accepted or not (a HELLO of a session we refuse); lastStaleHello:
	// when we last answered such a HELLO with ours; handshakeWait: the
	// bulk deadline passed while the handshake was failing (logged once).
	lastAuthentic  time.Time
	lastStaleHello time.Time
	handshakeWait  bool
	// peerDead: a peer silent this long is taken for dead (peerDeadAfter;
	// tests shorten it).
	peerDead  time.Duration
	lastSend  time.Time
	lastHello time.Time

	bulkWanted   bool      // we want the peer's table
	bulkAsked    time.Time // when BULK_REQ was last sent
	bulkDeadline time.Time
	synced       bool
	serveSeq     uint64 // sequence of the bulk we serve (0: none)
	serveEndAt   time.Time
	serveTries   int
	purgeAt      time.Time
	takeoverAt   time.Time
	lastWalk     time.Time // publish's last count of the table

	mu sync.Mutex // guards st
	st Status
}

// Status is the sync part of `carpd status`.
type Status struct {
	Peer        string `json:"peer"`
	PeerName    string `json:"peer_name,omitempty"`
	PeerUp      bool   `json:"peer_up"`
	Established bool   `json:"established"`
	// HandshakeFailing: the peer's frames authenticate but no session
	// is up (its clock went back, say); the sync demotion stays.
	HandshakeFailing bool       `json:"handshake_failing"`
	LastAck          time.Time  `json:"last_ack,omitzero"`
	RTT              string     `json:"rtt,omitempty"`
	FlowsLocal       int        `json:"flows_local"`     // flows we replicate
	FlowsSynced      int        `json:"flows_synced"`    // of those, acknowledged by the peer
	FlowsPending     int        `json:"flows_pending"`   // waiting to be sent
	FlowsPeer        int        `json:"flows_from_peer"` // the peer's flows in our kernel
	Bulk             BulkStatus `json:"bulk"`
	Counters         Counters   `json:"counters"`
}

// BulkStatus is the progress of the initial transfer.
type BulkStatus struct {
	Synced   bool `json:"synced"`    // we have the peer's table (or gave up waiting)
	TimedOut bool `json:"timed_out"` // gave up waiting
	Received int  `json:"received"`  // peer flows received so far
	Serving  bool `json:"serving"`   // sending our table to the peer
	Queued   int  `json:"queued"`    // of our table, still to send
}

// Counters are the sync link's statistics.
type Counters struct {
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`
	FramesSent     uint64 `json:"frames_sent"`
	FramesReceived uint64 `json:"frames_received"`
	FlowsSent      uint64 `json:"records_sent"`
	FlowsReceived  uint64 `json:"records_received"`
	Retransmits    uint64 `json:"flows_resent"`
	// Anti-entropy: flows we asked the peer for again (we lacked them),
	// flows the peer asked us for, and peer flows deleted because the
	// peer no longer has them (stale, or left from its previous session).
	Wanted      uint64 `json:"flows_wanted"`
	Repaired    uint64 `json:"flows_repaired"`
	PurgedStale uint64 `json:"flows_purged_stale"`
	BornAndDead uint64 `json:"flows_never_sent"`
	Overruns    uint64 `json:"kernel_overruns"`
	// Drops by reason.
	DropAuth      uint64 `json:"drop_auth"`
	DropReplay    uint64 `json:"drop_replay"`
	DropEpoch     uint64 `json:"drop_epoch"`
	DropMalformed uint64 `json:"drop_malformed"`
	DropSource    uint64 `json:"drop_wrong_source"`
	DropQueue     uint64 `json:"drop_queue_full"`
	// DropOversize: datagrams larger than any frame of ours, dropped
	// unread; DropPeerFull: peer flows beyond MaxPeerFlows.
	DropOversize uint64 `json:"drop_oversize"`
	DropPeerFull uint64 `json:"drop_peer_table_full"`
	// The peer's flows our own filter refused (Config.Admit), by rule;
	// invalid ones count as drop_invalid_flow.
	RefusedProtocol uint64 `json:"refused_protocol"`
	RefusedAddress  uint64 `json:"refused_address"`
	RefusedLocal    uint64 `json:"refused_local"`
	RefusedZone     uint64 `json:"refused_zone"`
	RefusedMark     uint64 `json:"refused_mark"`
	RefusedState    uint64 `json:"refused_state"`
	// RefusedClash: flows of the peer not injected because an entry of
	// ours (not injected from the peer) held their tuple.
	RefusedClash uint64 `json:"refused_clash"`
	// Clamped: timeouts of the peer's flows cut to the kernel's default
	// for their protocol and state.
	Clamped       uint64 `json:"timeouts_clamped"`
	DropInvalid   uint64 `json:"drop_invalid_flow"`
	DropUnknownID uint64 `json:"drop_unknown_id"`
	ApplyErrors   uint64 `json:"apply_errors"`
	SendErrors    uint64 `json:"send_errors"`
}

// New prepares an engine on conn (a UDP socket on the sync link).
func New(cfg Config, k Kernel, conn net.PacketConn) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MTU == 0 {
		cfg.MTU = defaultMTU
	}
	if cfg.Window <= 0 {
		cfg.Window = 200 * time.Millisecond
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	if cfg.BulkTimeout <= 0 {
		cfg.BulkTimeout = time.Minute
	}
	if cfg.MaxPeerFlows <= 0 {
		cfg.MaxPeerFlows = DefaultMaxPeerFlows
	}
	var nonce [wire.NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	epoch := cfg.Epoch
	if epoch == 0 {
		epoch = newEpoch(time.Now())
	}
	sess, err := wire.NewSession(wire.SessionConfig{Key: cfg.Key, Epoch: epoch, Nonce: nonce, Name: cfg.Name})
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: cfg.Log.With("op", "sync", "peer", cfg.Peer.String()), k: k, conn: conn, sess: sess,
		cmds: make(chan func()), recv: make(chan []byte, recvQueueLen),
		local: newTable[lmeta](), nextID: 1,
		inflight: map[uint64]*inflight{}, peer: newTable[pmeta](), peerIDs: map[uint64]uint32{}, recvAbove: map[uint64]bool{},
		wanted: map[uint64]struct{}{}, displaced: map[ckey]flow.Tuple{},
		srtt: 0, rttvar: 0, peerDead: peerDeadAfter,
	}
	if cfg.Bandwidth > 0 {
		burst := max(int(cfg.Bandwidth/4), 4*cfg.MTU)
		e.lim = rate.NewLimiter(rate.Limit(cfg.Bandwidth), burst)
	}
	e.st.Peer = cfg.Peer.String()
	return e, nil
}

// Run syncs until ctx is cancelled. It closes conn when it returns.
func (e *Engine) Run(ctx context.Context) error {
	now := time.Now()
	e.bulkWanted, e.bulkDeadline = true, now.Add(e.cfg.BulkTimeout)
	e.holding = true
	if err := e.resyncFromKernel(ctx); err != nil {
		e.log.Error("initial conntrack dump", "err", err)
	}
	e.holding = false
	e.wg.Add(1)
	go e.read()
	defer func() {
		e.conn.Close()
		e.wg.Wait()
	}()

	tick := time.NewTicker(min(max(e.cfg.Window/2, 10*time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	refresh := time.NewTicker(e.cfg.Refresh)
	defer refresh.Stop()
	// Full flushes run on a fixed grid (no drift from tick jitter); new and
	// deleted flows and acknowledgements also go out urgentWindow after
	// they became pending, through a timer armed only while such work
	// waits, so an idle engine wakes no more than the tick.
	nextFlush, lastUrgent := now.Add(e.cfg.Window), now
	urgent := min(e.cfg.Window, urgentWindow)
	urgentTimer := time.NewTimer(time.Hour)
	urgentTimer.Stop()
	defer urgentTimer.Stop()
	urgentArmed := false
	events := e.k.Events()
	for {
		if !urgentArmed && (len(e.queues[prioUrgent]) > 0 || e.ackFrames >= ackEvery) && e.canSend(time.Now()) {
			if e.urgentSince.IsZero() {
				e.urgentSince = time.Now()
			}
			from := e.urgentSince
			if lastUrgent.After(from) {
				from = lastUrgent
			}
			urgentTimer.Reset(max(time.Until(from.Add(urgent)), 0))
			urgentArmed = true
		}
		select {
		case t := <-urgentTimer.C:
			urgentArmed = false
			e.flush(t, prioUrgent)
			lastUrgent, e.urgentSince = t, time.Time{}
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			e.event(ctx, ev)
		case b := <-e.recv:
			e.receive(ctx, b, time.Now())
		case fn := <-e.cmds:
			fn()
		case t := <-refresh.C:
			e.refresh(ctx)
			e.purgeStale(ctx, t)
		case t := <-tick.C:
			e.timers(ctx, t)
			if !t.Before(nextFlush) {
				e.flush(t, numPrios-1)
				for !nextFlush.After(t) {
					nextFlush = nextFlush.Add(e.cfg.Window)
				}
			}
			// The table sizes in Status walk the table: once a tick, not
			// per event (counters are updated as they change).
			e.publish(t)
		}
	}
}

// do runs fn on the engine goroutine (or not at all once Run has ended).
func (e *Engine) do(ctx context.Context, fn func()) {
	done := make(chan struct{})
	select {
	case e.cmds <- func() { fn(); close(done) }:
		<-done
	case <-ctx.Done():
	}
}

// Status returns a snapshot; safe from any goroutine.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// Synced reports whether the initial transfer is over (done or given up).
func (e *Engine) Synced() bool { return e.Status().Bulk.Synced }

// Resync asks the peer for its whole table again.
func (e *Engine) Resync(ctx context.Context) {
	e.do(ctx, func() {
		e.bulkWanted, e.bulkAsked = true, time.Time{}
		e.log.Info("bulk resync requested")
	})
}

// Takeover tells the engine this router became master: after a grace time,
// flows of the peer that it has not confirmed for two refresh periods are
// purged from the kernel (their DELETE was most likely lost with the peer).
func (e *Engine) Takeover(ctx context.Context) {
	e.do(ctx, func() {
		now := time.Now()
		e.takeoverAt, e.purgeAt = now, now.Add(purgeGrace)
		// The peer's flows in our kernel are ours to replicate now, and
		// so are the ones still held.
		e.release()
		e.adopting = true
		if err := e.resyncFromKernel(ctx); err != nil {
			e.log.Warn("conntrack dump at takeover", "err", err)
		}
		e.adopting = false
	})
}

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

func (e *Engine) count(fn func(*Counters)) {
	e.mu.Lock()
	fn(&e.st.Counters)
	e.mu.Unlock()
}

// --- local flows: kernel events to the peer ---

func (e *Engine) event(ctx context.Context, ev flow.Event) {
	switch ev.Type {
	case flow.EventNew, flow.EventUpdate:
		e.upsert(ev.Flow)
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

func (e *Engine) upsert(f flow.Flow) {
	c, ok := packFlow(&f)
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
	err := e.k.Each(ctx, func(f *flow.Flow) { e.upsert(*f) })
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

// --- frames out ---

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
		enc.Reset(make([]byte, 0, e.cfg.MTU))
		nrec := 0
		if e.ackDue && (n > 0 || e.ackNow(now) || e.pending(upTo)) {
			ack := e.ack()
			if enc.Append(&ack) == nil {
				e.ackDue, e.ackFrames = false, 0
				nrec++
			}
		}
		var recs []sentRec
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
	return e.ackDue && (now.Sub(e.ackSince) >= ackDelay || e.ackFrames >= ackEvery)
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
		frame, pn, err = e.sess.Seal(make([]byte, 0, len(payload)+wire.HeaderLen+16), payload)
	}
	if err == nil {
		_, err = e.conn.WriteTo(frame, net.UDPAddrFromAddrPort(e.cfg.Peer))
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

// timers: HELLO until established, keepalives, retransmissions, bulk
// requests and answers, the bulk deadline, the purge after a takeover.
func (e *Engine) timers(ctx context.Context, now time.Time) {
	if !e.sess.Established() {
		if now.Sub(e.lastHello) >= helloInterval {
			e.lastHello = now
			e.sendControl(now, true)
		}
	} else if now.Sub(e.lastSend) >= keepaliveInterval {
		e.sendControl(now, false, wire.Record{Type: wire.RecordPing})
	}
	// Frames that came while the engine was busy (a table dump after an
	// event overrun takes a while with many flows) may hold the acks of
	// what is in flight: take them in before timing anything out. Only a
	// sender does, and a bounded number: a receiver's queue is data
	// (seconds of injection in a burst), and its acks must go meanwhile.
	if len(e.inflight) > 0 {
		for n := min(len(e.recv), maxDrain); n > 0; n-- {
			e.receive(ctx, <-e.recv, now)
		}
	}
	e.detectLoss(now)
	if e.bulkWanted && e.sess.Established() && now.Sub(e.bulkAsked) >= 5*time.Second {
		e.bulkAsked = now
		e.sendControl(now, false, wire.Record{Type: wire.RecordBulkReq})
	}
	// The bulk deadline is for a dead peer. One that is there but with
	// which the handshake fails has the table we lack: while it fails,
	// the deadline moves on (the transfer gets a whole timeout once the
	// session is up), and the demotion stays, whatever the time.
	if !e.synced && e.handshakeFailing(now) {
		if now.After(e.bulkDeadline) && !e.handshakeWait {
			e.handshakeWait = true
			e.log.Warn("the peer is there but the handshake fails; keeping the sync demotion until its table is in")
		}
		if d := now.Add(e.cfg.BulkTimeout); d.After(e.bulkDeadline) {
			e.bulkDeadline = d
		}
	}
	if !e.synced && now.After(e.bulkDeadline) {
		e.log.Warn("no complete table from the peer in time; going on without it", "timeout", e.cfg.BulkTimeout)
		e.setSynced(true)
	}
	e.serveBulkEnd(now)
	if len(e.wanted) > 0 && e.canSend(now) && now.Sub(e.lastWant) >= wantInterval {
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
	if !e.purgeAt.IsZero() && now.After(e.purgeAt) {
		e.purgeAt = time.Time{}
		e.purge(ctx)
	}
}

func (e *Engine) setSynced(timedOut bool) {
	e.bulkWanted = false
	if e.synced {
		return
	}
	e.synced = true
	e.release()
	e.mu.Lock()
	e.st.Bulk.Synced, e.st.Bulk.TimedOut = true, timedOut
	e.mu.Unlock()
	if e.cfg.OnSynced != nil {
		e.cfg.OnSynced()
	}
}

// release ends the hold of the flows found in the kernel at start that
// the peer's table did not bring: they are ours, and go to the peer.
//
// Not ours, perhaps: stale copies of flows the peer no longer has. But a
// node cannot tell those from the live connections it forwards (an
// ESTABLISHED flow that carries traffic makes no conntrack event), and
// not replicating a live flow breaks it at the next failover; a stale one
// costs the peer a table entry until it times out.
func (e *Engine) release() {
	n := 0
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.held {
			n++
			l.m.held = false
			e.mark(slot, l, newPrio(l))
		}
		return true
	})
	if n > 0 {
		e.log.Info("flows found in the kernel at start and not in the peer's table: replicating them", "flows", n)
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
		if expired && now.Sub(in.at) >= rto && (oldestAt.IsZero() || in.at.Before(oldestAt) || (in.at.Equal(oldestAt) && pn < oldest)) {
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
		sample := now.Sub(in.at)
		if e.srtt == 0 {
			e.srtt, e.rttvar = sample, sample/2
		} else {
			d := e.srtt - sample
			if d < 0 {
				d = -d
			}
			e.rttvar = (3*e.rttvar + d) / 4
			e.srtt = (7*e.srtt + sample) / 8
		}
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

// --- frames in ---

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

// startServing answers a BULK_REQ: every flow goes at bulk priority, then
// BULK_END(count, digest) once all of it is acknowledged. Flow ids grow
// monotonically, so the snapshot is "every id below serveSeq": both sides
// compute count and digest over exactly that set, however many flows come
// and go meanwhile.
func (e *Engine) startServing(now time.Time) {
	e.serveSeq = e.nextID
	e.serveTries, e.serveEndAt = 0, time.Time{}
	e.local.each(func(slot uint32, l *lflow) bool {
		if !l.m.deleted && !l.m.held {
			e.mark(slot, l, prioBulk)
			// Resend it whole: the peer asked because it may lack it.
			l.m.known = false
		}
		return true
	})
	e.log.Info("peer asked for our table", "flows", e.local.Len())
}

// serveBulkEnd sends BULK_END when the table has been delivered, and
// again every second until the peer confirms it (bounded).
func (e *Engine) serveBulkEnd(now time.Time) {
	if e.serveSeq == 0 || !e.sess.Established() || now.Sub(e.serveEndAt) < bulkEndRetry {
		return
	}
	var d wire.Digest
	done := true
	e.local.each(func(slot uint32, l *lflow) bool {
		if l.m.held {
			// Part of our table, or of the peer's: not known until the
			// peer's table is in (or it is given up on). A peer that
			// started with us waits as long.
			done = false
			return false
		}
		if l.m.id >= e.serveSeq || l.m.deleted {
			return true
		}
		if !l.m.known {
			done = false // still delivering the snapshot
			return false
		}
		d.Add(l.m.id, e.local.flowKey(slot))
		return true
	})
	if !done {
		return
	}
	e.serveEndAt = now
	e.serveTries++
	if e.serveTries > 30 {
		e.log.Warn("peer never confirmed the bulk transfer")
		e.serveSeq = 0
		return
	}
	e.sendControl(now, false, wire.Record{Type: wire.RecordBulkEnd,
		Bulk: wire.Bulk{Seq: e.serveSeq, Count: uint64(d.Count()), Digest: d.Sum()}})
}

// bulkEnd handles the peer's BULK_END: its announcement (compare with what
// we hold, confirm if equal) or its confirmation of ours.
func (e *Engine) bulkEnd(b wire.Bulk, now time.Time) {
	if b.Seq&confirmFlag != 0 {
		if b.Seq&^confirmFlag == e.serveSeq {
			e.log.Info("peer confirmed our table", "flows", b.Count)
			e.serveSeq = 0
		}
		return
	}
	var d wire.Digest
	e.peer.each(func(slot uint32, p *pflow) bool {
		if !p.m.gone && !p.m.orphan && p.m.id < b.Seq {
			d.Add(p.m.id, e.peer.flowKey(slot))
		}
		return true
	})
	if uint64(d.Count()) != b.Count || d.Sum() != b.Digest {
		e.log.Debug("bulk end does not match our copy yet", "theirs", b.Count, "ours", d.Count())
		return
	}
	e.sendControl(now, false, wire.Record{Type: wire.RecordBulkEnd,
		Bulk: wire.Bulk{Seq: b.Seq | confirmFlag, Count: b.Count, Digest: b.Digest}})
	if !e.synced {
		e.log.Info("peer's table received", "flows", b.Count)
	}
	e.setSynced(false)
	e.purgeOrphans(context.Background())
}

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
	if err := e.k.Delete(ctx, dels); err != nil {
		e.log.Warn("deleting stale flows", "err", err)
	}
}

// purge deletes the peer's flows it has not confirmed for two refresh
// periods before the takeover.
func (e *Engine) purge(ctx context.Context) {
	dels := e.takeUnconfirmed(e.takeoverAt.Add(-2 * e.cfg.Refresh))
	if len(dels) == 0 {
		return
	}
	e.log.Info("purging peer flows it no longer confirmed", "flows", len(dels))
	if err := e.k.Delete(ctx, dels); err != nil {
		e.log.Warn("purging flows", "err", err)
	}
}

// publish copies the table sizes into the status snapshot.
func (e *Engine) publish(now time.Time) {
	walk := now.Sub(e.lastWalk) >= publishWalk
	synced, pending := 0, 0
	if walk {
		e.lastWalk = now
		e.peerOut = 0
		e.peer.each(func(_ uint32, p *pflow) bool {
			if p.m.out && !p.m.gone {
				e.peerOut++
			}
			return true
		})
		e.local.each(func(_ uint32, l *lflow) bool {
			if l.m.known {
				synced++
			}
			if l.m.dirty != prioNone {
				pending++
			}
			return true
		})
	}
	_, _, _, ok := e.sess.Peer()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.Established = e.sess.Established()
	e.st.PeerUp = ok && !e.lastRecv.IsZero() && time.Since(e.lastRecv) < e.peerDead
	e.st.HandshakeFailing = e.handshakeFailing(now)
	e.st.FlowsLocal = e.local.Len()
	if walk {
		e.st.FlowsSynced, e.st.FlowsPending = synced, pending
	}
	e.st.FlowsPeer = max(len(e.peerIDs)-e.peerOut, 0) // not the refused ones
	e.st.Bulk.Received = len(e.peerIDs)
	e.st.Bulk.Serving = e.serveSeq != 0
	e.st.Bulk.Queued = len(e.queues[prioBulk])
	if e.srtt > 0 {
		e.st.RTT = e.srtt.Round(10 * time.Microsecond).String()
	}
}

// String is for logs.
func (s Status) String() string {
	return fmt.Sprintf("peer %s up=%v local %d synced %d peer %d", s.Peer, s.PeerUp, s.FlowsLocal, s.FlowsSynced, s.FlowsPeer)
}
