// Package track runs trackers: things outside carpd (an upstream path, a
// network, a script, a file, a process) whose health raises a demotion
// group while they are down (docs/trackers.md).
//
// A Tracker runs rounds in a goroutine of its own. Each round yields a
// value (0 = good, the tracker's weight or a file's integer = bad); the
// hysteresis machine turns rounds into a state that changes only after
// `down` consecutive bad rounds or `up` consecutive good ones, and a
// Report goes to the caller on every change of that state or value.
package track

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
)

// Report is a tracker's change: sent from the tracker's goroutine on every
// change of Down or Value (never per round). The receiver must not block.
type Report struct {
	Name, Group string
	Down        bool
	Value       int
	Reason      string
	Since       time.Time
}

// Tracker states (Status.State).
const (
	StateInit = "init"
	StateUp   = "up"
	StateDown = "down"
)

// Status is a tracker's state for `carpd status --json` and ubus status
// (docs/ubus.md): the TRACKER object.
type Status struct {
	Name    string         `json:"name"`
	Type    string         `json:"type"`
	Group   string         `json:"group"`
	Weight  int            `json:"weight"`
	State   string         `json:"state"`
	Value   int            `json:"value"`
	Reason  string         `json:"reason"`
	Since   time.Time      `json:"since"`
	Rounds  uint64         `json:"rounds"`
	Good    uint64         `json:"good"`
	Bad     uint64         `json:"bad"`
	Targets []TargetStatus `json:"targets,omitempty"`
	Error   string         `json:"error,omitempty"`
	// Suspect: the last round was bad and the tracker is not down (yet):
	// a failure is being confirmed (docs/trackers.md#confirming).
	Suspect bool `json:"suspect,omitempty"`
	// Dropped counts the ICMP packets a ping tracker received and
	// ignored, by reason (wrong source, wrong id, not an echo reply...).
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

// TargetStatus is one ping target's figures.
type TargetStatus struct {
	Address  string  `json:"address"`
	Sent     uint64  `json:"sent"`
	Received uint64  `json:"received"`
	RTTms    float64 `json:"rtt_ms"`
}

// NetStatus is what an interface tracker needs to know of an OpenWrt
// network (netifd's `network.interface.NAME status`).
type NetStatus struct {
	Up           bool
	Address      bool // it has an IPv4 or IPv6 address
	DefaultRoute bool // it has a default route (IPv4 or IPv6)
	Device       string
}

// Netifd reads OpenWrt networks' status.
type Netifd interface {
	// Status returns the network's status; an error when netifd does not
	// know the network.
	Status(ctx context.Context, network string) (NetStatus, error)
	// Watch returns a channel that receives (without blocking the sender,
	// coalesced) when some network's status may have changed, until ctx
	// is done. It may return nil: then trackers only poll.
	Watch(ctx context.Context) <-chan struct{}
}

// ICMPConn is a socket for ICMP echo: raw IPv4 ICMP or ICMPv6.
type ICMPConn interface {
	// WriteTo sends an ICMP message (header and body, checksum computed by
	// the sender for IPv4, by the kernel for ICMPv6) to dst.
	WriteTo(msg []byte, dst netip.Addr) error
	// ReadFrom reads one ICMP message (without the IPv4 header) and its
	// source, waiting until the deadline.
	ReadFrom(buf []byte, deadline time.Time) (n int, src netip.Addr, err error)
	Close() error
}

// Env is what trackers use of the system; nil fields are the real thing.
type Env struct {
	Clock carp.Clock
	// Netifd: nil means no netifd (plain Linux): an interface tracker then
	// follows device carrier only, device names resolve only as devices.
	Netifd Netifd
	// LinkUp reports a device's carrier (default vip.LinkUp).
	LinkUp func(dev string) (bool, error)
	// Run runs a program with args, killed (with its process group) when
	// ctx is done; its combined output and error (default
	// openwrt.RunProgram, no os/exec).
	Run func(ctx context.Context, argv []string) ([]byte, error)
	// ProcRoot is the proc file system (default /proc).
	ProcRoot string
	// ICMP opens an echo socket for IPv4 (v6 false) or IPv6, bound to
	// device when it is not "" (default: raw sockets, SO_BINDTODEVICE).
	ICMP func(v6 bool, device string) (ICMPConn, error)
	// Resume, when above 0, is the value of the tracker this one replaces
	// (a reload changed its options while it was down): it starts down
	// with that value instead of from init, so the demotion stays until
	// its own rounds bring it up (or change the value).
	Resume int
}

// Tracker is a running tracker.
type Tracker struct {
	cfg    config.Track
	env    Env
	report func(Report)
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	st Status
	m  machine
	// settled: the machine changed once; the reason is the change's.
	settled bool
	// probe: ProbeNow asked for a round at once; probing: in suspect
	// mode (a ping tracker's short timeout).
	probe   chan struct{}
	probing atomic.Bool
}

// ProbeNow starts a round at once (after the one under way, if any); a
// ping tracker runs it in suspect mode, with the short timeout
// (docs/trackers.md#confirming). Safe from any goroutine; it never blocks.
func (t *Tracker) ProbeNow() {
	t.probing.Store(true)
	select {
	case t.probe <- struct{}{}:
	default:
	}
}

// Start starts the tracker cfg (already validated, defaults applied) and
// returns at once; report gets every change until Stop. A tracker that
// cannot work (no socket, no such network) counts its rounds bad and says
// why in Status().Error.
func Start(ctx context.Context, cfg config.Track, env Env, report func(Report)) *Tracker {
	env = env.withDefaults()
	cfg = WithDefaults(cfg)
	ctx, cancel := context.WithCancel(ctx)
	t := &Tracker{cfg: cfg, env: env, report: report, cancel: cancel, done: make(chan struct{}),
		probe: make(chan struct{}, 1)}
	now := env.Clock.Now()
	t.m = machine{down: cfg.Down, up: cfg.Up, state: StateInit, since: now}
	t.st = Status{Name: cfg.Name, Type: cfg.Type, Group: cfg.Group, Weight: cfg.Weight,
		State: StateInit, Reason: "starting", Since: now}
	if env.Resume > 0 {
		t.m.state, t.m.value = StateDown, env.Resume
		t.st.State, t.st.Value, t.st.Reason = StateDown, env.Resume, "down before the reload"
		t.settled = true
	}
	p := newProber(t)
	go t.run(ctx, p)
	return t
}

// Status returns the tracker's current state.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.st
	st.Targets = append([]TargetStatus(nil), t.st.Targets...)
	if t.st.Dropped != nil {
		st.Dropped = make(map[string]uint64, len(t.st.Dropped))
		for k, v := range t.st.Dropped {
			st.Dropped[k] = v
		}
	}
	return st
}

// Stop ends the tracker and waits for its goroutine; no Report follows.
func (t *Tracker) Stop() {
	t.cancel()
	<-t.done
}

// Config returns the tracker's configuration (defaults applied).
func (t *Tracker) Config() config.Track { return t.cfg }

// WithDefaults fills what a hand-built config.Track (tests, the daemon
// before validation) leaves zero, with the UCI defaults.
func WithDefaults(c config.Track) config.Track {
	if c.Interval <= 0 {
		c.Interval = config.DefaultTrackInterval
	}
	// config.Validate refuses shorter intervals; a hand-built config
	// must not make a busy loop either.
	c.Interval = max(c.Interval, config.MinTrackInterval)
	if c.Timeout <= 0 {
		c.Timeout = min(time.Second, c.Interval)
	}
	if c.Reliability <= 0 {
		c.Reliability = 1
	}
	if c.Down <= 0 {
		c.Down = 3
	}
	if c.Up <= 0 {
		c.Up = 3
	}
	if c.Group == "" {
		c.Group = config.DefaultGroup
	}
	if c.Weight <= 0 && c.Type != config.TrackFile {
		c.Weight = 1
	}
	return c
}
