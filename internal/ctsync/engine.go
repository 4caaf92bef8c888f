package ctsync

// The Engine: its configuration, its state, the goroutine that owns it
// (Run) and the calls other goroutines make into it. The package
// comment (doc.go) lists the other files, one concern each.

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/logx"
	"golang.org/x/time/rate"
)

// Kernel is conntrack as the engine uses it. internal/ctsync/kernel implements it
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
	Log          *logx.Logger
	// Clock is the engine's time; nil is the real one. Tests pass a
	// ctsynctest.Clock.
	Clock Clock
	// OnSynced is called (from the engine goroutine, so it must not block)
	// when the initial bulk transfer from the peer completed or timed out,
	// and again when a complete table arrives after it timed out.
	OnSynced func()
	// OnConfig gets the peer's CONFIG and CONFIG_ACK records (config.go),
	// on the engine goroutine: it must not block, and may keep r's data.
	// A nil r is a configuration record that did not parse.
	OnConfig func(r *wire.Record)
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
	// (docs/sync-protocol.md#priorities-and-coalescing); see newPrio and
	// urgentDue: it goes at once when it comes alone (aloneAfter).
	// Acknowledgements go with the window's flush.
	urgentWindow = 20 * time.Millisecond
	// aloneAfter: urgent work whose kernel event comes this long after
	// the previous urgent one (and nothing behind it) is alone and goes
	// at once (urgentEvent). Longer than urgentWindow, so that a busy
	// link whose events a loaded router takes in with gaps (scheduling
	// stalls of tens of ms) keeps coalescing: below 20 new flows/s, on
	// average, latency matters more than the datagram each costs.
	aloneAfter    = 50 * time.Millisecond
	maxSACKRanges = 16
	// publishWalk: how often Status's counts that walk the table (synced,
	// pending) are refreshed; the table sizes are kept at every tick.
	publishWalk = 250 * time.Millisecond
	// An acknowledgement rides with records when there are some; alone,
	// it waits ackDelay, so that a stream of small frames is not answered
	// frame for frame (the retransmission timeout allows for it), or,
	// in a burst, until ackEvery frames are due and urgentWindow passed.
	ackDelay = 200 * time.Millisecond
	ackEvery = 16
	// lazyAckDelay: an acknowledgement of frames that carried only
	// leases waits this long, or for a frame that goes anyway (records,
	// a keepalive), or for ackEvery frames: a lone lease event costs its
	// frame, not also an acknowledgement frame. The sender allows for it
	// (lazyFrame) before it takes such a frame for lost.
	lazyAckDelay = keepaliveInterval
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

// Engine replicates conntrack state between two routers. One goroutine
// (Run) owns all of its state; Status, Resync and Takeover talk to it
// through channels.
type Engine struct {
	cfg  Config
	log  *logx.Logger
	k    Kernel
	conn net.PacketConn
	sess *wire.Session
	// to is cfg.Peer as the socket takes it; encBuf and frameBuf are
	// Run's scratch for a frame's records and the sealed frame (the
	// socket copies what it sends).
	to       *net.UDPAddr
	encBuf   []byte
	frameBuf []byte
	lim      *rate.Limiter // nil: no cap

	cmds chan func()
	// The applier goroutine (apply.go): its queue, its questions while
	// Kernel.Inject runs, and the flows an entry of ours kept out.
	applyq  chan applyJob
	queries chan injectedQuery
	clashes chan []sentRec
	stop    chan struct{} // closed when Run ends: the applier stops
	// unapplied: NEW flows of the peer queued for the kernel, not yet
	// written (Status.FlowsPeer counts the peer's flows in our kernel).
	unapplied atomic.Int64
	recv      chan []byte
	wg        sync.WaitGroup

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
	holding   bool
	wanted    map[uint64]struct{} // ids of peer flows we lack (anti-entropy)
	peerOut   int                 // flows of the peer not in our kernel (out), at the last walk
	lastWant  time.Time
	peerSince time.Time       // when the peer's current session began
	recvCum   uint64          // lowest peer packet number not yet received
	recvAbove map[uint64]bool // received packet numbers above recvCum
	ackDue    bool
	ackSince  time.Time // when ackDue was set
	ackFrames int       // frames to acknowledge since then
	ackLazy   bool      // they carried only leases (lazyAckDelay)
	// urgentSince: when urgent work (a new established flow) last
	// became pending; zero when none waits. urgentQuiet: that work came
	// from a kernel event at least aloneAfter after the previous
	// urgent one (lastUrgentEvent), so it goes at once (urgentDue).
	// lastUrgent: when urgent work was last flushed.
	urgentSince     time.Time
	urgentQuiet     bool
	lastUrgentEvent time.Time
	lastUrgent      time.Time
	lastRecv        time.Time
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

	// bulkDone: closed by the applier once the peer's complete table
	// (its BULK_END matched) is in the kernel; nil when not waiting.
	bulkDone     chan struct{}
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
	// bulkFailed: the initial transfer timed out and no complete table
	// came since (Status.Bulk.TimedOut); the table is asked for again
	// once a session is up.
	bulkFailed bool

	// CARP states (carp.go): carpKick wakes Run to send ours; lastCarp
	// (Run's) is when they last went.
	carpKick chan struct{}
	lastCarp time.Time

	mu sync.Mutex // guards st, carpOut, carpIn and configOut
	st Status
	// carpOut: our CARP states to tell the peer; carpIn: the peer's.
	carpOut []wire.CarpState
	carpIn  map[carpKey]PeerCarpState
	// configOut: configuration records to send (config.go).
	configOut []wire.Record

	ls leaseSync // DHCP leases (leases.go)
}

// New prepares an engine on conn (a UDP socket on the sync link).
func New(cfg Config, k Kernel, conn net.PacketConn) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = logx.New(logx.DiscardHandler)
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
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
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
		epoch = newEpoch(cfg.Clock.Now())
	}
	sess, err := wire.NewSession(wire.SessionConfig{Key: cfg.Key, Epoch: epoch, Nonce: nonce, Name: cfg.Name})
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: cfg.Log.With("op", "sync", "peer", cfg.Peer.String()), k: k, conn: conn, sess: sess,
		cmds: make(chan func()), recv: make(chan []byte, recvQueueLen),
		applyq: make(chan applyJob, applyQueueLen), queries: make(chan injectedQuery), clashes: make(chan []sentRec),
		stop: make(chan struct{}), carpKick: make(chan struct{}, 1), ls: leaseSync{notify: make(chan struct{}, 1)},
		local: newTable[lmeta](), nextID: 1,
		inflight: map[uint64]*inflight{}, peer: newTable[pmeta](), peerIDs: map[uint64]uint32{}, recvAbove: map[uint64]bool{},
		wanted: map[uint64]struct{}{},
		srtt:   0, rttvar: 0, peerDead: peerDeadAfter,
	}
	if cfg.Bandwidth > 0 {
		burst := max(int(cfg.Bandwidth/4), 4*cfg.MTU)
		e.lim = rate.NewLimiter(rate.Limit(cfg.Bandwidth), burst)
	}
	e.to = net.UDPAddrFromAddrPort(cfg.Peer)
	e.st.Peer = cfg.Peer.String()
	return e, nil
}

// Run syncs until ctx is cancelled. It closes conn when it returns.
func (e *Engine) Run(ctx context.Context) error {
	clk := e.cfg.Clock
	now := clk.Now()
	e.bulkWanted, e.bulkDeadline = true, now.Add(e.cfg.BulkTimeout)
	e.holding = true
	if err := e.resyncFromKernel(ctx); err != nil {
		e.log.Error("initial conntrack dump", "err", err)
	}
	e.holding = false
	e.wg.Add(2)
	go e.read()
	go e.applier(ctx)
	defer func() {
		close(e.stop)
		e.conn.Close()
		e.wg.Wait()
	}()

	tick, stopTick := clk.Ticker(min(max(e.cfg.Window/2, 10*time.Millisecond), 100*time.Millisecond))
	defer stopTick()
	refresh, stopRefresh := clk.Ticker(e.cfg.Refresh)
	defer stopRefresh()
	// Full flushes run on a fixed grid (no drift from tick jitter). Urgent
	// work (a new established flow, or ackEvery frames to acknowledge)
	// goes at once when it comes alone, and otherwise urgentWindow after it
	// became pending, through a timer armed only while such work waits
	// (urgentDue), so an idle engine wakes no more than the tick.
	nextFlush := now.Add(e.cfg.Window)
	urgent := min(e.cfg.Window, urgentWindow)
	var urgentTimer <-chan time.Time // nil: not armed
	stopUrgent := func() {}
	defer func() { stopUrgent() }()
	events := e.k.Events()
	for {
		if urgentTimer == nil && (len(e.queues[prioUrgent]) > 0 || e.ackFrames >= ackEvery) {
			if t := clk.Now(); e.canSend(t) {
				if e.urgentSince.IsZero() {
					e.urgentSince = t
				}
				if due := e.urgentDue(t, urgent); due.After(t) {
					urgentTimer, stopUrgent = clk.Timer(due.Sub(t))
				} else {
					e.flushUrgent(t)
					continue
				}
			}
		}
		select {
		case t := <-urgentTimer:
			stopUrgent()
			urgentTimer, stopUrgent = nil, func() {}
			e.flushUrgent(t)
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			n := len(e.queues[prioUrgent])
			e.event(ctx, &ev)
			// Kernel events come in bursts: take in what waits (a
			// bounded number) without a turn of the whole select each.
			events = e.drainEvents(ctx, events)
			if grew := len(e.queues[prioUrgent]) - n; grew > 0 {
				// Alone: one urgent flow, no other event behind it (a
				// burst the engine takes in late is not alone).
				e.urgentEvent(clk.Now(), grew == 1 && len(events) == 0)
			}
		case b := <-e.recv:
			e.receive(ctx, b, clk.Now())
		case fn := <-e.cmds:
			fn()
		case q := <-e.queries:
			q.ans <- e.injected(q.x)
		case clashed := <-e.clashes:
			e.keptOut(clashed)
		case <-e.bulkDone:
			e.bulkApplied(ctx)
		case <-e.carpKick:
			e.sendCarp(clk.Now())
		case t := <-refresh:
			e.refresh(ctx)
			e.purgeStale(ctx, t)
		case t := <-tick:
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

// maxEventBatch bounds the kernel events Run takes in at once, so that
// frames, timers and commands keep their turn under an event storm.
const maxEventBatch = 64

// drainEvents takes in up to maxEventBatch-1 more events that wait on
// events, without blocking; it returns nil if the channel was closed.
func (e *Engine) drainEvents(ctx context.Context, events <-chan flow.Event) <-chan flow.Event {
	for range maxEventBatch - 1 {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			e.event(ctx, &ev)
		default:
			return events
		}
	}
	return events
}

// urgentEvent notes that kernel events made urgent work pending at now;
// one says it is one flow with no other event waiting behind it. Such
// work that finds none pending, and comes aloneAfter or more after the
// previous urgent event, is alone: it goes at once (urgentQuiet).
func (e *Engine) urgentEvent(now time.Time, one bool) {
	if e.urgentSince.IsZero() {
		e.urgentSince = now
		e.urgentQuiet = one && now.Sub(e.lastUrgentEvent) >= aloneAfter
	}
	e.lastUrgentEvent = now
}

// urgentDue is when the urgent work pending since e.urgentSince goes.
// Alone (urgentQuiet), at once, when the byte cap has room for a full
// frame: a new connection on a quiet link reaches the peer within a
// datagram's flight. Otherwise urgent after it became pending (and after
// the last urgent flush), so that a busy link's flows share frames and a
// short one that closes meanwhile is sent once, closed (newPrio), or, if
// it is destroyed within the window, never (as before: ≤ 40 B per short
// flow).
func (e *Engine) urgentDue(now time.Time, urgent time.Duration) time.Time {
	if e.urgentQuiet && (e.lim == nil || e.lim.TokensAt(now) >= float64(e.cfg.MTU+udpIPOverhead)) {
		return e.urgentSince
	}
	from := e.urgentSince
	if e.lastUrgent.After(from) {
		from = e.lastUrgent
	}
	return from.Add(urgent)
}

// flushUrgent sends the urgent work and resets its bookkeeping.
func (e *Engine) flushUrgent(now time.Time) {
	e.flush(now, prioUrgent)
	e.lastUrgent, e.urgentSince, e.urgentQuiet = now, time.Time{}, false
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
		now := e.cfg.Clock.Now()
		e.takeoverAt, e.purgeAt = now, now.Add(purgeGrace)
		// The peer's flows in our kernel are ours to replicate now, and
		// so are the ones still held.
		e.release()
		// The dump must hold the peer's flows still queued for the
		// kernel: their own events are not ours to see (SkipOwnWrites).
		e.waitApplied(ctx)
		e.adopting = true
		if err := e.resyncFromKernel(ctx); err != nil {
			e.log.Warn("conntrack dump at takeover", "err", err)
		}
		e.adopting = false
	})
}

func (e *Engine) count(fn func(*Counters)) {
	e.mu.Lock()
	fn(&e.st.Counters)
	e.mu.Unlock()
}

// timers: HELLO until established, keepalives, retransmissions, bulk
// requests and answers, the bulk deadline, the purge after a takeover.
func (e *Engine) timers(ctx context.Context, now time.Time) {
	e.sessionTimers(now)
	// Frames that came while the engine was busy (a table dump after an
	// event overrun takes a while with many flows) may hold the acks of
	// what is in flight: take them in before timing anything out. Only a
	// sender does, and a bounded number: a receiver's queue is data, and
	// its acks must go meanwhile.
	if len(e.inflight) > 0 {
		for n := min(len(e.recv), maxDrain); n > 0; n-- {
			e.receive(ctx, <-e.recv, now)
		}
	}
	e.detectLoss(now)
	e.bulkTimers(now)
	e.sendWant(now)
	e.carpTimer(now)
	e.sendConfig(now)
	e.leaseTimer(now)
	e.expireGone(now)
	if !e.purgeAt.IsZero() && now.After(e.purgeAt) {
		e.purgeAt = time.Time{}
		e.purge(ctx)
	}
}
