package carp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is the CARP state of one virtual host (docs/carp-protocol.md#states).
// There is no FAULT state: a down interface is INIT plus a demotion, as on
// the BSDs.
type State uint8

const (
	Init State = iota
	Backup
	Master
)

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Params are the configured timing and policy of a virtual host.
type Params struct {
	AdvBase uint8
	AdvSkew uint8
	// Preempt: a BACKUP that advertises more often than the MASTER it hears
	// takes over (OpenBSD/FreeBSD net.inet.carp.preempt).
	Preempt bool
	// DemoteToSkew also adds the demotion to the advertised advskew, capped
	// at 240, the way FreeBSD expresses demotion (docs/carp-protocol.md#demotion),
	// so FreeBSD and ucarp peers with preempt take over from a demoted carpd
	// master too.
	DemoteToSkew bool
}

// Interval is the configured advertisement interval advbase + advskew/256.
// When both are zero OpenBSD uses 1/256 s; so does carpd.
func (p Params) Interval() time.Duration { return interval(p.AdvBase, p.AdvSkew) }

// MasterDown is how long a backup waits without a valid advert before it
// takes over: 3 intervals (OpenBSD rev 1.370; docs/carp-protocol.md#timers).
func (p Params) MasterDown() time.Duration { return MasterDownMultiplier * p.Interval() }

func interval(base, skew uint8) time.Duration {
	if base == 0 && skew == 0 {
		return time.Second / 256
	}
	return time.Duration(base)*time.Second + time.Duration(skew)*time.Second/256
}

// timeval is the value the BSDs compare between nodes: advbase seconds plus
// floor(advskew*10^6/256) microseconds. Shorter is better.
func timeval(base, skew uint8) int64 {
	return int64(base)*1_000_000 + int64(skew)*1_000_000/256
}

// Event is an input to the state machine.
type Event interface{ isEvent() }

type (
	// EvStart: the interface is up and the vhid may leave INIT.
	EvStart struct{}
	// EvLinkDown: the interface lost its link; the vhid goes to INIT.
	EvLinkDown struct{}
	// EvStop: graceful stop; a master bows out.
	EvStop struct{}
	// EvTimer: the deadline from NextDeadline has passed.
	EvTimer struct{}
	// EvAdvert: a valid, authenticated advert for this vhid from a peer.
	EvAdvert struct {
		AdvBase, AdvSkew, Demote uint8
		Src                      netip.Addr
	}
	// EvDemote sets the demotion counter (sum of every source, 0-255).
	EvDemote struct{ Demote uint8 }
	// EvParams changes advbase, advskew or policy without a state change
	// (a hitless reload, like ifconfig on the BSDs; docs/carp-protocol.md#states).
	EvParams struct{ Params Params }
	// EvHold holds takeovers on demotion until Until, for Reason
	// (docs/carp-protocol.md#demotion): the runner's answer to
	// ActConfirm, or a hold after our own tracker recovered. A zero
	// Until releases the hold: a BACKUP whose confirmation is pending
	// takes over at once from the more demoted master it last heard.
	EvHold struct {
		Until  time.Time
		Reason string
	}
)

func (EvStart) isEvent()    {}
func (EvLinkDown) isEvent() {}
func (EvStop) isEvent()     {}
func (EvTimer) isEvent()    {}
func (EvAdvert) isEvent()   {}
func (EvDemote) isEvent()   {}
func (EvParams) isEvent()   {}
func (EvHold) isEvent()     {}

// Action is an output of the state machine, carried out by the runner in
// the order given.
type Action interface{ isAction() }

type (
	// ActSend: send one advert now with these values; to To only when it
	// is set (the yield notice, see Machine.advert), else as configured.
	ActSend struct {
		AdvBase, AdvSkew, Demote uint8
		To                       netip.Addr
	}
	// ActAddVIPs: configure the virtual addresses.
	ActAddVIPs struct{}
	// ActRemoveVIPs: remove the virtual addresses.
	ActRemoveVIPs struct{}
	// ActAnnounce: gratuitous ARP and unsolicited NA for every VIP.
	ActAnnounce struct{}
	// ActRemoveVIPsLater: remove the VIPs after BowOutLinger, unless the
	// vhid becomes MASTER again in between.
	ActRemoveVIPsLater struct{}
	// ActConfirm: a master more demoted than us was heard and
	// Machine.Confirm is set: the runner checks that our own path is
	// healthy and answers with EvHold (docs/carp-protocol.md#demotion).
	// Until then, and at most Confirm long, the machine stays BACKUP.
	ActConfirm struct {
		Master         netip.Addr
		Demote, Theirs uint8
	}
)

// Transition reports a state change, for logs, hooks and events. It is both
// the machine's action and what VHost publishes: the machine fills in the
// change, VHost what only it knows (Interface, VHID, Addresses).
type Transition struct {
	Interface string
	VHID      uint8
	From, To  State
	Reason    string
	// Master is the address of the master after the change: ours when we
	// became MASTER, the peer's when we yielded to it, else invalid.
	Master    netip.Addr
	Addresses []netip.Prefix
	At        time.Time
}

func (ActSend) isAction()            {}
func (ActAddVIPs) isAction()         {}
func (ActRemoveVIPs) isAction()      {}
func (ActAnnounce) isAction()        {}
func (ActRemoveVIPsLater) isAction() {}
func (Transition) isAction()         {}
func (ActConfirm) isAction()         {}

// Machine is the state machine of one virtual host. It is a plain value:
// Step takes an event and the current time and returns what to do. It never
// reads the clock, sleeps, logs or touches a socket, so it is tested with a
// fake clock and no goroutines.
//
//	        EvStart                 master down / better than master
//	INIT ────────────▶ BACKUP ────────────────────────────────▶ MASTER
//	 ▲                   ▲ ◀────────────────────────────────────  │
//	 │                   │     better master heard                 │
//	 └───────────────────┴──── EvLinkDown / EvStop ────────────────┘
type Machine struct {
	Params Params
	State  State
	// Demote is the current demotion counter (OpenBSD demote byte).
	Demote uint8
	// Self is the source address of our own adverts, for the tie-break
	// between two masters with equal timing. Unset: always yield.
	Self netip.Addr

	// deadline is the master-down time in BACKUP and the next advert in
	// MASTER; zero in INIT.
	deadline time.Time
	// sent counts adverts sent since the last takeover, to repeat the
	// gratuitous ARP burst after AnnounceRepeatAdverts.
	sent int
	// answered is when this master last announced itself: at the
	// takeover, or answering another master it outranks (a healed split
	// brain). It bounds those answers to one per interval.
	answered time.Time

	// Confirm > 0: a BACKUP that hears a master more demoted than itself
	// asks the runner to confirm (ActConfirm) before it takes over, and
	// waits at most Confirm for the answer; 0 takes over at once, as
	// OpenBSD does. The daemon sets it for vhids that trackers watch.
	Confirm time.Duration
	// The hold of takeovers on demotion: until holdUntil, for holdWhy;
	// asked: ActConfirm was sent for the demoted master heard (cleared
	// when a master no more demoted than us is heard); peer and
	// peerDemote: that master.
	holdUntil  time.Time
	holdWhy    string
	asked      bool
	peer       netip.Addr
	peerDemote uint8
}

// Held says why a takeover on demotion is being held, "" when none is.
func (m *Machine) Held(now time.Time) string {
	if m.State == Backup && now.Before(m.holdUntil) {
		return m.holdWhy
	}
	return ""
}

// NewMachine returns a machine in INIT.
func NewMachine(p Params) *Machine { return &Machine{Params: p} }

// NextDeadline is when the machine wants an EvTimer; zero means never.
func (m *Machine) NextDeadline() time.Time { return m.deadline }

// advertised returns the advbase and advskew this node puts on the wire.
func (m *Machine) advertised() (base, skew uint8) {
	base, skew = m.Params.AdvBase, m.Params.AdvSkew
	if m.Params.DemoteToSkew && m.Demote > 0 {
		s := int(skew) + int(m.Demote)
		skew = uint8(min(s, MaxFBSDSkew))
	}
	return base, skew
}

func (m *Machine) send() ActSend {
	base, skew := m.advertised()
	return ActSend{AdvBase: base, AdvSkew: skew, Demote: m.Demote}
}

// Step feeds one event to the machine and returns the actions to carry out.
func (m *Machine) Step(ev Event, now time.Time) []Action {
	switch ev := ev.(type) {
	case EvStart:
		if m.State == Init {
			return m.toBackup(now, "started", netip.Addr{})
		}
	case EvLinkDown:
		if m.State != Init {
			return m.toInit(now, "link down", false)
		}
	case EvStop:
		if m.State != Init {
			return m.toInit(now, "stopped", true)
		}
	case EvTimer:
		return m.timer(now)
	case EvAdvert:
		return m.advert(ev, now)
	case EvDemote:
		if ev.Demote == m.Demote {
			return nil
		}
		m.Demote = ev.Demote
		if m.State == Master {
			// Tell the peers at once (docs/carp-protocol.md#demotion):
			// with OpenBSD semantics a backup with a lower demotion takes
			// over right away.
			m.deadline = now.Add(m.Params.Interval())
			m.sent++
			return []Action{m.send()}
		}
	case EvHold:
		m.holdUntil, m.holdWhy = ev.Until, ev.Reason
		if ev.Until.IsZero() && m.asked && m.State == Backup && m.peerDemote > m.Demote {
			return m.toMaster(now, fmt.Sprintf("master %s is demoted (%d > %d), confirmed", m.peer, m.peerDemote, m.Demote))
		}
	case EvParams:
		m.Params = ev.Params
		switch m.State {
		case Master:
			m.deadline = now.Add(m.Params.Interval())
			return []Action{m.send()}
		case Backup:
			m.deadline = now.Add(m.Params.MasterDown())
		}
	}
	return nil
}

func (m *Machine) timer(now time.Time) []Action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	switch m.State {
	case Backup:
		return m.toMaster(now, "master down")
	case Master:
		m.deadline = now.Add(m.Params.Interval())
		m.sent++
		acts := []Action{m.send()}
		if m.sent == AnnounceRepeatAdverts+1 {
			acts = append(acts, ActAnnounce{})
		}
		return acts
	}
	return nil
}

// advert implements the receive rules of OpenBSD carp_proto_input_c
// (docs/carp-protocol.md#receive-rules).
func (m *Machine) advert(ev EvAdvert, now time.Time) []Action {
	theirs := timeval(ev.AdvBase, ev.AdvSkew)
	base, skew := m.advertised()
	ours := timeval(base, skew)

	switch m.State {
	case Master:
		// A faster master that is not more demoted, or a less demoted one
		// whatever its speed, wins (OpenBSD). On a tie in both, the BSDs
		// yield and let the first backup timer re-elect, which two masters
		// in lockstep repeat forever; carpd instead keeps the master with
		// the numerically lower source address, like ucarp but independent
		// of byte order. A BSD peer always yields on a tie, so a mixed pair
		// converges too.
		tie := ours == theirs && ev.Demote == m.Demote
		if (ours > theirs && ev.Demote <= m.Demote) || ev.Demote < m.Demote ||
			(tie && (!m.Self.IsValid() || ev.Src.Less(m.Self))) {
			acts := m.toBackup(now, fmt.Sprintf("more frequent master %s", ev.Src), ev.Src)
			// Two masters: a split brain heals (or a preempting node
			// took over). Tell the winner with one advert of ours, to it
			// alone: if its adverts reached us before ours reached it, it
			// would not know the LAN's neighbour caches still point at
			// us (docs/carp-protocol.md#split-brain). It answers as below.
			if ev.Src.IsValid() {
				n := m.send()
				n.To = ev.Src
				acts = append(acts, n)
			}
			return acts
		}
		// A master we outrank (or one bowing out): it yields when it hears
		// us, but the neighbours on its side of a healed partition still
		// send to it. Advertise and announce at once, not at the next
		// advert: once per interval at most, whatever the other sends.
		if m.answered.IsZero() || now.Sub(m.answered) >= m.Params.Interval() {
			m.answered = now
			m.deadline = now.Add(m.Params.Interval())
			m.sent = 1 // the burst repeats as after a takeover
			return []Action{m.send(), ActAnnounce{}}
		}
	case Backup:
		demoted := ev.Demote > m.Demote
		if !demoted {
			m.asked = false
		}
		m.peer, m.peerDemote = ev.Src, ev.Demote
		switch {
		case ev.AdvBase == BowOutAdvBase && ev.AdvSkew == BowOutAdvSkew:
			// The master stops gracefully (docs/carp-protocol.md#bow-out).
			// OpenBSD takes over on a bow-out only through the "too slow to
			// live" rule below, which it skips when its own advbase is 0,
			// so a sub-second backup
			// would wait out the master-down time; carpd takes over at once
			// whatever its own timing.
			return m.toMaster(now, fmt.Sprintf("master %s bowed out", ev.Src))
		case demoted && now.Before(m.holdUntil):
			// Held (confirming, or our tracker just recovered); the
			// master-down timer still runs below.
		case demoted && m.Confirm > 0 && !m.asked:
			m.asked = true
			m.holdUntil, m.holdWhy = now.Add(m.Confirm), "confirming own trackers"
			m.deadline = now.Add(m.Params.MasterDown())
			return []Action{ActConfirm{Master: ev.Src, Demote: m.Demote, Theirs: ev.Demote}}
		case m.Params.Preempt && ours < theirs && ev.Demote >= m.Demote:
			return m.toMaster(now, fmt.Sprintf("preempting less frequent master %s", ev.Src))
		case ev.Demote > m.Demote:
			return m.toMaster(now, fmt.Sprintf("master %s is demoted (%d > %d)", ev.Src, ev.Demote, m.Demote))
		case m.Params.AdvBase != 0 && theirs > MasterDownMultiplier*timeval(m.Params.AdvBase, 0):
			// The master will time out anyway.
			return m.toMaster(now, fmt.Sprintf("master %s advertises too slowly to live", ev.Src))
		}
		m.deadline = now.Add(m.Params.MasterDown())
	}
	return nil
}

func (m *Machine) toMaster(now time.Time, reason string) []Action {
	from := m.State
	m.State = Master
	m.sent = 1
	m.answered = now
	m.deadline = now.Add(m.Params.Interval())
	return []Action{
		Transition{From: from, To: Master, Reason: reason, Master: m.Self, At: now},
		ActAddVIPs{},
		m.send(),
		ActAnnounce{},
	}
}

// toBackup enters BACKUP; master is the peer we yield to, if any.
func (m *Machine) toBackup(now time.Time, reason string, master netip.Addr) []Action {
	from := m.State
	m.State = Backup
	m.deadline = now.Add(m.Params.MasterDown())
	acts := []Action{Transition{From: from, To: Backup, Reason: reason, Master: master, At: now}}
	if from == Master {
		acts = append(acts, ActRemoveVIPs{})
	}
	return acts
}

// toInit leaves BACKUP or MASTER. A master stopping gracefully sends the
// bow-out advert and keeps its VIPs for BowOutLinger so the backup can
// announce itself first.
func (m *Machine) toInit(now time.Time, reason string, graceful bool) []Action {
	from := m.State
	m.State = Init
	m.deadline = time.Time{}
	acts := []Action{Transition{From: from, To: Init, Reason: reason, At: now}}
	switch {
	case from == Master && graceful:
		acts = append(acts,
			ActSend{AdvBase: BowOutAdvBase, AdvSkew: BowOutAdvSkew, Demote: m.Demote},
			ActRemoveVIPsLater{})
	case from == Master:
		acts = append(acts, ActRemoveVIPs{})
	}
	return acts
}
