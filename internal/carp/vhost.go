package carp

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/logx"
)

// Announcer acts on the machine's decisions: it adds, removes and announces
// the virtual addresses of one vhid on its interface. vip.Linux implements
// it with rtnetlink and AF_PACKET; carptest has a recording fake.
//
// Every method applies all of its arguments even when one fails, and
// returns the failures joined with errors.Join, so that one bad address
// does not keep the others from moving on takeover.
type Announcer interface {
	// Add configures the prefixes on the interface: the address p.Addr()
	// with the prefix length p.Bits() (192.0.2.10/24 adds 192.0.2.10 with
	// a /24 subnet). It is idempotent, with replace semantics ("ip addr
	// replace"); IPv6 addresses are usable at once, never tentative.
	Add(ctx context.Context, p []netip.Prefix) error
	// Remove deletes exactly these address/prefix-length pairs. It is
	// idempotent: absent addresses, and a missing interface, are not
	// errors.
	Remove(ctx context.Context, p []netip.Prefix) error
	// Announce sends one burst: for each IPv4 address a gratuitous ARP
	// request and reply, for each IPv6 address one unsolicited Neighbor
	// Advertisement with Override. The vhost decides how often (once on
	// takeover, once more two adverts later); Announce never repeats.
	Announce(ctx context.Context, a []netip.Addr) error
}

// Sender puts one advertisement on the wire of an interface. dst is the
// multicast group (224.0.0.18, ff02::12) or a unicast peer.
type Sender interface {
	// Send does not keep payload after it returns.
	Send(payload []byte, dst netip.Addr) error
	// Source returns our own source address for the family of dst, used
	// for the tie-break and own-packet detection.
	Source(v6 bool) netip.Addr
	// IsLocal reports whether a is one of this host's addresses on the
	// interface (our own advert looped back, or a clash).
	IsLocal(a netip.Addr) bool
}

// IfaceAddrs is where an Iface reads its interface's addresses, which
// choose its adverts' source and recognise its own adverts looped back. It
// must be current: an address counts from the moment the kernel has it.
// *vip.Watcher is one (kept up to date by rtnetlink events).
type IfaceAddrs interface {
	// Addrs returns the addresses of the named interface, the primary
	// first; the caller does not change the slice.
	Addrs(ifname string) []netip.Addr
}

// Multicast destinations of adverts (docs/carp-protocol.md#encapsulation).
var (
	Group4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.MustParseAddr("ff02::12")
)

// VHostConfig is what a virtual host needs to run.
type VHostConfig struct {
	Interface string
	VHID      uint8
	Params    Params
	Password  string
	Addresses []netip.Prefix
	// Peers, when set, replace multicast with unicast adverts.
	Peers []netip.Addr
}

// Counters are the per-vhid statistics shown by `carpd status`.
type Counters struct {
	AdvertsSent     uint64 `json:"adverts_sent"`
	AdvertsReceived uint64 `json:"adverts_received"`
	BadChecksum     uint64 `json:"bad_checksum"`
	BadHMAC         uint64 `json:"bad_hmac"`
	BadTTL          uint64 `json:"bad_ttl"`
	BadVersion      uint64 `json:"bad_version_or_length"`
	OwnPacket       uint64 `json:"own_packet"`
	SendErrors      uint64 `json:"send_errors"`
	Transitions     uint64 `json:"transitions"`
	Dropped         uint64 `json:"queue_overflow"`
	// Authenticated adverts refused by the carpd counter checks
	// (docs/carp-authentication.md): a sequence that is not newer than
	// the last one heard from that source (a replay), clear timing that
	// differs from the timing under the HMAC (a rewritten replay), and a
	// BSD-format counter from a source already heard in carpd format (a
	// downgrade).
	StaleSequence  uint64 `json:"stale_sequence"`
	TimingMismatch uint64 `json:"timing_mismatch"`
	Downgrade      uint64 `json:"format_downgrade"`
}

// Status is a snapshot of one virtual host.
type Status struct {
	Interface string `json:"interface"`
	// Network is the OpenWrt network name the interface was resolved
	// from, when the config names a network (lan) rather than a device.
	Network    string     `json:"network,omitempty"`
	VHID       uint8      `json:"vhid"`
	State      string     `json:"state"`
	Since      time.Time  `json:"since"`
	AdvBase    uint8      `json:"advbase"`
	AdvSkew    uint8      `json:"advskew"`
	Demotion   uint8      `json:"demotion"`
	Master     string     `json:"master,omitempty"`
	MasterSeen *time.Time `json:"master_seen,omitempty"`
	Addresses  []string   `json:"addresses"`
	Peers      []string   `json:"peers,omitempty"`
	// PeerDemotion and PeerAdvSkew are the demote byte and advskew of
	// the last advert heard from another router (the master, while we
	// are backup): its demotion next to ours. Nil until one is heard.
	PeerDemotion *uint8   `json:"peer_demotion,omitempty"`
	PeerAdvSkew  *uint8   `json:"peer_advskew,omitempty"`
	Counters     Counters `json:"counters"`
	// SendErrorsSince is when the vhost demoted itself by one for
	// failing to send its adverts (SendErrorDemoteThreshold in a row);
	// zero while it is not. The daemon lists it as the source
	// send_errors.
	SendErrorsSince time.Time `json:"-"`
	// Error says why a vhid is not running (INIT), e.g. a missing device.
	Error string `json:"error,omitempty"`
	// Held says why this BACKUP does not take over from a more demoted
	// master yet (docs/carp-protocol.md#demotion).
	Held string `json:"held,omitempty"`
}

// VHost runs one virtual host: it owns a Machine, the HMAC state and the
// timer, all confined to the goroutine started by Run. Other goroutines talk
// to it only through channels and read its published Status under mu.
type VHost struct {
	log  *logx.Logger
	clk  Clock
	tx   Sender
	vips Announcer
	// onTransition is called from the vhost goroutine; it must not block.
	onTransition func(Transition)
	// onConfirm gets the machine's ActConfirm, on the vhost goroutine; it
	// must not block.
	onConfirm func(ActConfirm)

	inbox chan rxAdvert
	cmds  chan func()
	done  chan struct{}
	drops dropCounters
	rx    rxGuard

	// Owned by the Run goroutine.
	cfg        VHostConfig
	m          *Machine
	auth       *Auth // for sending; the readers use rx.auth
	extDemote  uint8 // demotion from outside (manual, link, sync)
	sendErrs   int   // consecutive send errors
	errDemoted bool
	errSince   time.Time // when errDemoted was set
	linger     Timer     // pending VIP removal after a bow-out
	linkUp     bool
	confirm    time.Duration      // WithConfirm's bound, for the machine
	last4      time.Time          // when an IPv4 advert was last heard
	txBufs     [2][HeaderLen]byte // send's, IPv4 and IPv6

	cfgGen uint64 // counts setConfig calls

	mu        sync.Mutex // guards status, statusCfg and peer
	status    Status
	statusCfg uint64 // the cfgGen status.Addresses and Peers were built for
	// The last advert heard, kept as values and turned into Status's
	// pointers by Status(): pointers set on every advert would each be an
	// allocation.
	masterSeen time.Time
	peerHeard  bool
	peerDem    uint8
	peerSkew   uint8
	masterAddr netip.Addr // whose string status.Master holds
}

// NewVHost prepares a virtual host; Run starts it. tx sends its adverts;
// whoever receives them for it (Iface, or carptest's fake segment) passes
// them to Deliver. onTransition is called on the vhost goroutine for every
// state change and must not block.
func NewVHost(cfg VHostConfig, tx Sender, vips Announcer, log *logx.Logger, onTransition func(Transition), opts ...VHostOption) *VHost {
	if log == nil {
		log = logx.New(logx.DiscardHandler)
	}
	if onTransition == nil {
		onTransition = func(Transition) {}
	}
	v := &VHost{
		log:          log.With("iface", cfg.Interface, "vhid", cfg.VHID),
		clk:          realClock{},
		tx:           tx,
		vips:         vips,
		onTransition: onTransition,
		inbox:        make(chan rxAdvert, inboxLen),
		cmds:         make(chan func(), 8),
		done:         make(chan struct{}),
		linkUp:       true,
	}
	for _, o := range opts {
		o(v)
	}
	v.setConfig(cfg)
	v.m = NewMachine(cfg.Params)
	v.m.Confirm = v.confirm
	v.status.Since = v.clk.Now()
	v.publish(func(s *Status) {})
	return v
}

func (v *VHost) setConfig(cfg VHostConfig) {
	v.cfg = cfg
	v.cfgGen++
	addrs := make([]netip.Addr, len(cfg.Addresses))
	for i, p := range cfg.Addresses {
		addrs[i] = p.Addr()
	}
	v.auth = NewAuth(cfg.Password, cfg.VHID, addrs)
	v.rx.mu.Lock()
	v.rx.auth = NewAuth(cfg.Password, cfg.VHID, addrs)
	v.rx.secure = cfg.Password != ""
	v.rx.markers = nil
	if v.rx.peers == nil {
		v.rx.peers = map[netip.Addr]*seqPeer{}
	}
	v.rx.mu.Unlock()
}

// do runs fn on the vhost goroutine and waits for it, or gives up when the
// vhost has stopped.
func (v *VHost) do(fn func()) {
	ran := make(chan struct{})
	select {
	case v.cmds <- func() { fn(); close(ran) }:
		select {
		case <-ran:
		case <-v.done:
		}
	case <-v.done:
	}
}

// SetDemote sets the external demotion (manual, link, sync...). The vhost
// adds its own send-error demotion.
func (v *VHost) SetDemote(d uint8) { v.do(func() { v.extDemote = d; v.stepDemote() }) }

// SetLink reports the link state of the interface.
func (v *VHost) SetLink(up bool) {
	v.do(func() {
		if up == v.linkUp {
			return
		}
		v.linkUp = up
		if up {
			v.step(EvStart{})
		} else {
			v.step(EvLinkDown{})
		}
	})
}

// Update applies a changed configuration of the same interface and vhid
// without a state change: new timing, password, addresses or peers.
func (v *VHost) Update(cfg VHostConfig) {
	v.do(func() {
		old := v.cfg.Addresses
		v.setConfig(cfg)
		if v.m.State == Master {
			var gone []netip.Prefix
			for _, p := range old {
				if !slices.Contains(cfg.Addresses, p) {
					gone = append(gone, p)
				}
			}
			v.removeVIPs(gone)
			v.addVIPs()
			v.announce()
		}
		v.step(EvParams{Params: cfg.Params})
		v.log.Info("configuration updated", "state", v.m.State)
	})
}

// Status returns a snapshot; safe from any goroutine.
func (v *VHost) Status() Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.status
	v.drops.fill(&s.Counters)
	if !v.masterSeen.IsZero() {
		t := v.masterSeen
		s.MasterSeen = &t
	}
	if v.peerHeard {
		d, k := v.peerDem, v.peerSkew
		s.PeerDemotion, s.PeerAdvSkew = &d, &k
	}
	s.Addresses = slices.Clone(s.Addresses)
	s.Peers = slices.Clone(s.Peers)
	return s
}

// Done is closed when Run has returned.
func (v *VHost) Done() <-chan struct{} { return v.done }

func (v *VHost) publish(fn func(*Status)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fn(&v.status)
	s := &v.status
	s.Interface, s.VHID = v.cfg.Interface, v.cfg.VHID
	s.AdvBase, s.AdvSkew = v.cfg.Params.AdvBase, v.cfg.Params.AdvSkew
	if v.m != nil {
		s.State = v.m.State.String()
		s.Demotion = v.m.Demote
	}
	// The address strings change only with the configuration: building
	// them on every publication cost allocations per advert.
	if v.statusCfg != v.cfgGen {
		v.statusCfg = v.cfgGen
		s.Addresses = s.Addresses[:0]
		for _, p := range v.cfg.Addresses {
			s.Addresses = append(s.Addresses, p.String())
		}
		s.Peers = s.Peers[:0]
		for _, p := range v.cfg.Peers {
			s.Peers = append(s.Peers, p.String())
		}
	}
}

// Run drives the vhost until ctx is cancelled, then stops gracefully: a
// master sends the bow-out advert, keeps its VIPs for BowOutLinger and
// removes them. Run always removes the VIPs before it returns.
func (v *VHost) Run(ctx context.Context) {
	defer close(v.done)
	// After a crash and restart the VIPs may still be configured: a node
	// that is not (yet) master must not hold them.
	v.removeVIPs(v.cfg.Addresses)
	v.m.Self = v.tx.Source(v.cfg.Addresses[0].Addr().Is6() && !v.hasV4())
	if v.linkUp {
		v.step(EvStart{})
	}
	timer := v.clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if d := v.m.NextDeadline(); !d.IsZero() {
			timer.Reset(max(d.Sub(v.clk.Now()), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			v.stop()
			return
		case ad := <-v.inbox:
			v.receive(ad)
		case fn := <-v.cmds:
			fn()
		case <-timer.C():
			v.takeQueued()
			v.step(EvTimer{})
		}
	}
}

// Drainer is implemented by a Sender that can hand over, at once, the
// adverts the kernel holds for it but its readers have not yet read
// (Iface.Drain).
type Drainer interface{ Drain() }

// takeQueued feeds the machine, before a backup's master-down timer
// counts, every advert that has arrived: still in the kernel's socket
// queue (Drainer) or in the inbox. When carpd (or the whole router) was
// not scheduled for longer than the master-down interval, the timer and
// the master's advert become ready together, and a select picks either;
// the advert arrived in time and must win, else a busy backup takes over
// from a live master.
func (v *VHost) takeQueued() {
	if v.m.State != Backup {
		return
	}
	if d, ok := v.tx.(Drainer); ok {
		d.Drain()
	}
	for range inboxLen {
		select {
		case ad := <-v.inbox:
			v.receive(ad)
		default:
			return
		}
	}
}

func (v *VHost) stop() {
	v.step(EvStop{})
	// ActRemoveVIPsLater armed the linger timer: keep the VIPs until the
	// new master is heard (plus BowOutAfterHeard) or BowOutLinger passes.
	if v.linger != nil {
		v.lingerUntilHeard()
		v.linger = nil
	}
	v.removeVIPs(v.cfg.Addresses)
}

func (v *VHost) lingerUntilHeard() {
	defer v.linger.Stop()
	for {
		select {
		case <-v.linger.C():
			return
		case ad := <-v.inbox:
			if ad.a.AdvBase == BowOutAdvBase {
				continue
			}
			v.log.Debug("new master heard; releasing the VIPs", "peer", ad.src)
			<-v.clk.NewTimer(BowOutAfterHeard).C()
			return
		}
	}
}

func (v *VHost) hasV4() bool {
	for _, p := range v.cfg.Addresses {
		if p.Addr().Is4() {
			return true
		}
	}
	return false
}

// receive feeds an advert that passed admit to the machine.
func (v *VHost) receive(ad rxAdvert) {
	p, a := ad, ad.a
	now := v.clk.Now()
	v.mu.Lock()
	v.status.Counters.AdvertsReceived++
	// A vhid with IPv4 and IPv6 VIPs hears the master twice per interval;
	// show its IPv4 address, which admins recognise, unless only IPv6 is
	// heard.
	if p.src.Is4() {
		v.last4 = now
	}
	if v.m.State != Master && (p.src.Is4() || now.Sub(v.last4) > v.m.Params.MasterDown()) {
		if v.masterAddr != p.src {
			v.masterAddr = p.src
			v.status.Master = p.src.String()
		}
		v.masterSeen = now
	}
	if a.AdvBase != BowOutAdvBase {
		v.peerHeard, v.peerDem, v.peerSkew = true, a.Demote, a.AdvSkew
	}
	v.mu.Unlock()
	v.step(EvAdvert{AdvBase: a.AdvBase, AdvSkew: a.AdvSkew, Demote: a.Demote, Src: p.src})
}

func (v *VHost) stepDemote() {
	d := int(v.extDemote)
	if v.errDemoted {
		d++
	}
	v.step(EvDemote{Demote: uint8(min(d, 255))})
	// Status shows the demotion at once, also in a state that sends
	// nothing (INIT, BACKUP) and so publishes nothing else; with it, the
	// send-error source that explains it.
	v.publish(func(s *Status) { s.SendErrorsSince = v.errSince })
}

// step feeds the machine and carries out its actions in order.
func (v *VHost) step(ev Event) {
	for _, act := range v.m.Step(ev, v.clk.Now()) {
		switch act := act.(type) {
		case Transition:
			v.transition(act)
		case ActSend:
			v.send(act)
		case ActAddVIPs:
			if v.linger != nil {
				v.linger.Stop()
				v.linger = nil
			}
			v.addVIPs()
		case ActRemoveVIPs:
			v.removeVIPs(v.cfg.Addresses)
		case ActRemoveVIPsLater:
			v.linger = v.clk.NewTimer(BowOutLinger)
		case ActAnnounce:
			v.announce()
		case ActConfirm:
			v.log.Info("master is demoted; confirming before taking over", "master", act.Master, "theirs", act.Theirs, "ours", act.Demote)
			if v.onConfirm != nil {
				v.onConfirm(act)
			}
		}
	}
	if held := v.m.Held(v.clk.Now()); held != v.status.Held {
		v.publish(func(s *Status) { s.Held = held })
	}
}

// WithConfirm makes the vhost confirm before taking over from a more
// demoted master (Machine.Confirm = bound): fn gets each ActConfirm and
// the answer comes through Hold.
func WithConfirm(bound time.Duration, fn func(ActConfirm)) VHostOption {
	return func(v *VHost) { v.onConfirm, v.confirm = fn, bound }
}

// SetConfirm changes the bound of WithConfirm; 0 takes over at once.
func (v *VHost) SetConfirm(bound time.Duration) { v.do(func() { v.m.Confirm = bound }) }

// Hold holds takeovers on demotion until until (EvHold); a zero until
// releases the hold.
func (v *VHost) Hold(until time.Time, reason string) {
	v.do(func() {
		if reason != "" && !until.IsZero() {
			v.log.Info("takeover held", "reason", reason, "until", until)
		}
		v.step(EvHold{Until: until, Reason: reason})
	})
}

// transition publishes a state change the machine decided, completed with
// what only the vhost knows.
func (v *VHost) transition(t Transition) {
	t.Interface, t.VHID, t.Addresses = v.cfg.Interface, v.cfg.VHID, slices.Clone(v.cfg.Addresses)
	v.log.Info("state change", "was", t.From, "now", t.To, "reason", t.Reason)
	v.publish(func(s *Status) {
		s.Since = t.At
		s.Counters.Transitions++
		if t.To == Master {
			s.Master = "self"
			v.masterAddr = netip.Addr{}
			v.masterSeen = time.Time{}
			v.peerHeard = false // no master heard now
		}
	})
	v.onTransition(t)
}

func (v *VHost) send(s ActSend) {
	a := Advert{Version: Version, Type: TypeAdvertisement, VHID: v.cfg.VHID,
		AdvSkew: s.AdvSkew, AuthLen: AuthLen, Demote: s.Demote, AdvBase: s.AdvBase}
	seq := v.rx.nextSeq(v.clk.Now())
	// The marker depends on the source address, so each family gets its
	// own counter and HMAC; both carry the same sequence.
	// The buffers are the vhost's: handed to the Sender (an interface),
	// locals would escape and cost an allocation per advert.
	bufs := &v.txBufs
	var payloads [2][]byte
	payload := func(v6 bool) []byte {
		i := 0
		if v6 {
			i = 1
		}
		if payloads[i] == nil {
			a.Counter = EncodeCounter(CarpdCounter{Marker: v.auth.Marker(v.tx.Source(v6)),
				AdvBase: s.AdvBase, AdvSkew: s.AdvSkew, Demote: s.Demote, Seq: seq})
			a.HMAC = v.auth.Sum(a.Counter)
			payloads[i], _ = a.AppendBinary(bufs[i][:0])
		}
		return payloads[i]
	}

	var dsts []netip.Addr
	if s.To.IsValid() {
		dsts = []netip.Addr{s.To}
	} else if len(v.cfg.Peers) > 0 {
		dsts = v.cfg.Peers
	} else {
		v4, v6 := false, false
		for _, p := range v.cfg.Addresses {
			v4 = v4 || p.Addr().Is4()
			v6 = v6 || p.Addr().Is6()
		}
		if v4 {
			dsts = append(dsts, Group4)
		}
		if v6 {
			dsts = append(dsts, Group6)
		}
	}
	var err error
	for _, d := range dsts {
		if e := v.tx.Send(payload(d.Is6()), d); e != nil {
			err = e
		}
	}
	// The counters are published after the demotion they cause or undo,
	// so that no status shows the threshold of errors reached with the
	// demotion not yet raised (TestSendErrorsDemote saw that once).
	if err != nil {
		v.sendErrs++
		v.log.Warn("sending advert", "err", err)
		if v.sendErrs >= SendErrorDemoteThreshold && !v.errDemoted {
			v.errDemoted, v.errSince = true, v.clk.Now()
			v.stepDemote()
		}
		v.publish(func(st *Status) { st.Counters.SendErrors++ })
		return
	}
	if v.sendErrs > 0 {
		v.sendErrs = 0
		if v.errDemoted {
			v.errDemoted, v.errSince = false, time.Time{}
			v.stepDemote()
		}
	}
	v.publish(func(st *Status) { st.Counters.AdvertsSent++ })
}

// vipTimeout bounds each rtnetlink or announce operation.
const vipTimeout = 2 * time.Second

func (v *VHost) addVIPs() {
	ctx, cancel := context.WithTimeout(context.Background(), vipTimeout)
	defer cancel()
	if err := v.vips.Add(ctx, v.cfg.Addresses); err != nil {
		v.log.Error("adding virtual addresses", "err", err)
	}
}

func (v *VHost) removeVIPs(p []netip.Prefix) {
	if len(p) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), vipTimeout)
	defer cancel()
	if err := v.vips.Remove(ctx, p); err != nil {
		v.log.Error("removing virtual addresses", "err", err)
	}
}

func (v *VHost) announce() {
	addrs := make([]netip.Addr, len(v.cfg.Addresses))
	for i, p := range v.cfg.Addresses {
		addrs[i] = p.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), vipTimeout)
	defer cancel()
	if err := v.vips.Announce(ctx, addrs); err != nil {
		v.log.Warn("announcing virtual addresses", "err", err)
	}
}

// SetLinkInitial sets the link state before Run; it must not be called once
// Run has started (use SetLink).
func (v *VHost) SetLinkInitial(up bool) { v.linkUp = up }

// SetDemoteInitial sets the external demotion before Run; it must not be
// called once Run has started (use SetDemote).
func (v *VHost) SetDemoteInitial(d uint8) {
	v.extDemote = d
	v.m.Demote = d
	v.publish(func(*Status) {})
}
