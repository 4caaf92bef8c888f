// Package daemon wires carpd together: it turns a config.Config into running
// CARP virtual hosts (package carp) on their interfaces, acts on their
// decisions through package vip, watches link state, keeps the demotion
// groups (package demote) and runs the trackers (package track), serves
// the control socket and applies reloads. It is the only
// package that knows all the others.
//
// # One owner
//
// The daemon's state (the config, the vhosts and interfaces, the demotion
// sources, the trackers, maintenance mode, the sync engine, the recent transitions) is
// owned by one goroutine: the loop of Run. Nothing else reads or writes it,
// and it has no lock. Everyone else talks to the loop:
//
//   - requests (control socket, ubus) hand it a function with do and wait
//     for it to have run; the function only looks and changes state, and
//     what is slow about a request (reading the config file, writing the
//     state file, waiting for vhosts to bow out, a sync resync) happens on
//     the requester's goroutine, before or after;
//   - vhost goroutines report transitions on the events channel, which
//     never blocks them;
//   - signals, the link watcher, netifd events, the sync engine's
//     "synced", the trackers' reports (a wake-up; the reports wait in
//     each tracker's mailbox) and the expiry of demotion sources arrive
//     on channels of their own;
//   - work the loop starts but must not wait for (a vhost's bow-out, a
//     network name asked of netifd over ubus, the sync engine's conntrack
//     dump at takeover, stopping a sync engine, flushing the hooks of an
//     old hook runner) runs on goroutines of its own, which post their
//     result back to the loop with post.
//
// The loop itself calls only what returns at once: netlink and socket
// setup, and the carp.VHost and carp.Iface methods, which hand work to the
// vhost's goroutine (a vhost handles a command in microseconds; it never
// waits for the daemon).
package daemon

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/demote"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/openwrt"
	"github.com/carpd/carpd/internal/vip"
)

// MaintenanceDemotion is added to every vhid in maintenance mode: more
// than any automatic source, like OPNsense's +240, and it leaves room for
// further manual demotion.
const MaintenanceDemotion = 240

// Options are what main hands to the daemon besides the config.
type Options struct {
	Log *logx.Logger
	// Level is the log level variable, changed on reload.
	Level *logx.LevelVar
	// Load re-reads the configuration on reload (SIGHUP or the control
	// socket). Nil disables reload.
	Load func() (*config.Config, error)
	// ControlSocket overrides the config's control socket path.
	ControlSocket string
	Version       string
	// Env is the way to the system; the zero Env is the real one.
	Env Env
}

// ifaceRetry is how often an interface that could not be opened (it may not
// exist yet, like a bridge created later at boot) is tried again.
const ifaceRetry = 2 * time.Second

// recentTransitions is how many transitions status keeps.
const recentTransitions = 32

// eventQueueLen bounds the transitions on their way from the vhosts to the
// loop. The loop takes each in microseconds; a full queue means it is
// stuck, and the transition is dropped (and counted) rather than stall the
// vhost that made it.
const eventQueueLen = 256

// errStopping answers requests that arrive while carpd stops.
var errStopping = errors.New("carpd is stopping")

// Daemon is a running carpd.
type Daemon struct {
	log  *logx.Logger
	opts Options
	env  Env // opts.Env with the defaults filled in
	// links is the one watcher of links and addresses, nil if it could
	// not start; set by Run before anything opens.
	links   LinkWatcher
	started time.Time

	// cmds carries functions to run on the loop (do, post). Unbuffered:
	// once a send returns, the loop runs the function next.
	cmds chan func()
	// loopDone is closed when the loop takes no more functions.
	loopDone chan struct{}
	// events carries transitions from vhost goroutines to the loop.
	events chan carp.Transition
	// eventsDropped counts transitions the loop never saw (events full).
	eventsDropped atomic.Uint64
	// netEvents carries netifd's network.interface events (network names)
	// from the ubus listener to the loop.
	netEvents chan string
	// syncedCh: the sync engine finished its first bulk transfer.
	syncedCh chan struct{}
	// trackWake: a tracker queued a report (track.go).
	trackWake chan struct{}

	// stateMu orders the writes of the state file (maintenance requests,
	// on their own goroutines). The loop never takes it.
	stateMu sync.Mutex
	// reloadMu orders reloads: one loads and applies at a time. The loop
	// never takes it.
	reloadMu sync.Mutex

	// wg counts the vhost goroutines, bg the other goroutines the loop
	// starts; Run waits for both. bgCtx ends bg's work when Run stops.
	wg    sync.WaitGroup
	bg    sync.WaitGroup
	bgCtx context.Context

	// Everything below belongs to the loop (and, before Run, to New and
	// to the tests that build a Daemon without running it).
	cfg    *config.Config
	ifaces map[string]*ifaceEntry
	vhosts map[string]*vhostEntry // by config.VHID.Key()
	// balancers are the balanced sections (balance.go), by sectionKey.
	balancers map[string]*balancer
	stopping  map[slot]*carp.VHost     // halted vhosts not yet stopped
	sources   demote.Table             // the demotion groups' sources (demotion.go)
	expiry    carp.Timer               // fires at the next source expiry; nil before Run
	trackers  map[string]*trackerEntry // by section name (track.go)
	maint     bool                     // maintenance mode, persisted in the state file
	stateErr  error                    // why the last state file write failed; nil when it worked
	reloads   int                      // successful reloads
	recent    []TransitionRecord       // the last recentTransitions transitions
	hotplug   *openwrt.Hotplug         // the hook runner (Run makes it); events go to it only when hooks are on
	hooks     string                   // the hook program; "" when hooks are off
	ubus      *ubusBridge              // nil without ubus_socket
	runCtx    context.Context          // parent of the vhosts' contexts
	closing   bool                     // Run is stopping: nothing new starts
	// State sync.
	sync         *syncRunner
	syncErr      error
	syncWaited   bool // the initial transfer completed or timed out once
	syncStopping bool // an engine is stopping; the next starts after it
	syncLinkUp   bool // the link of the sync interface (sync_link)
	takeoverBusy bool // an engine takeover (conntrack dump) runs
	takeoverMore bool // another vhid became master meanwhile

	split    splitBrain      // splitbrain.go
	services []*serviceEntry // services.go, in config order
	retiring []*serviceEntry // removed services whose worker may still run an action
	mwait    maintWait       // maintenance.go
	cfgs     *cfgSyncer      // configuration sync (cfgsync.go)
	leases   leaseWorker     // DHCP lease sync (leases.go)
}

// slot is where a vhost runs: a device and a vhid. Two vhosts never share
// one: a vhost that was halted keeps its slot until it has bowed out.
type slot struct {
	dev  string
	vhid uint8
}

type ifaceEntry struct {
	name   string
	iface  Iface // nil until opened
	vips   Addresses
	linkUp bool
	err    error
}

type vhostEntry struct {
	cfg    config.VHID
	vc     carp.VHostConfig // Interface is the resolved device
	v      *carp.VHost      // nil while its interface is not open
	cancel context.CancelFunc
	own    demote.Table // the vhid's own demotion sources (group "")
	gate   *vipGate     // v's address manager; tells services when the VIPs are added
	demote int          // the demotion last given to v; -1 before
	dev    string       // the device cfg.Interface resolved to; "" while unresolved
	netw   bool         // cfg.Interface is an OpenWrt network name
	err    error        // why the vhost is not running
	// A network name is resolved off the loop: resolving is set while
	// a lookup runs, again when another is wanted after it, and gen
	// tells a lookup's result from one made stale by a halt.
	resolving, again bool
	gen              int
}

// TransitionRecord is one state change as status lists it and as the
// carp.state ubus event carries it: carp.Transition in the shape of the
// daemon's JSON contract.
type TransitionRecord struct {
	Time      time.Time `json:"time"`
	Interface string    `json:"interface"`
	VHID      uint8     `json:"vhid"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	Master    string    `json:"master,omitempty"`
}

// New prepares a daemon for cfg; Run starts it.
func New(cfg *config.Config, opts Options) *Daemon {
	if opts.Log == nil {
		opts.Log = logx.New(logx.DiscardHandler)
	}
	if opts.ControlSocket == "" {
		opts.ControlSocket = cfg.Global.ControlSocket
	}
	d := &Daemon{
		log: opts.Log, opts: opts, env: opts.Env.withDefaults(), cfg: cfg, started: time.Now(),
		cmds: make(chan func()), loopDone: make(chan struct{}),
		events:    make(chan carp.Transition, eventQueueLen),
		netEvents: make(chan string, 16),
		syncedCh:  make(chan struct{}, 1),
		trackWake: make(chan struct{}, 1),
		trackers:  map[string]*trackerEntry{},
		bgCtx:     context.Background(),
		ifaces:    map[string]*ifaceEntry{}, vhosts: map[string]*vhostEntry{}, stopping: map[slot]*carp.VHost{},
		syncLinkUp: true,
	}
	if d.env.RunService == nil {
		d.env.RunService = d.runService
	}
	d.maint = d.loadState().Maintenance
	d.cfgs = newCfgSyncer(d.log, d.statePath())
	if d.maint {
		d.log.Warn("maintenance mode is on (from the state file): every vhid is demoted", "state_file", d.statePath())
	}
	return d
}

// post hands fn to the loop and returns once the loop has taken it, or
// false when the loop has ended (fn then never runs). For goroutines that
// report back to the loop.
func (d *Daemon) post(fn func()) bool {
	select {
	case d.cmds <- fn:
		return true
	case <-d.loopDone:
		return false
	}
}

// do runs fn on the loop and returns after it ran, or errStopping when
// the loop has ended. For requests.
func (d *Daemon) do(fn func()) error {
	ran := make(chan struct{})
	if !d.post(func() { defer close(ran); fn() }) {
		return errStopping
	}
	<-ran
	return nil
}

// Run runs until ctx is cancelled or a fatal error, then stops every vhost
// gracefully (bow-out, VIPs removed) and returns. reload receives a value
// for each SIGHUP. The goroutine that calls Run is the loop.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	ctl, err := d.env.ListenControl(d.opts.ControlSocket)
	if err != nil {
		return err
	}
	bgCtx, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	d.bgCtx = bgCtx
	// The hook runner lives as long as Run: a reload may turn hooks on
	// or off, and events are run one at a time however often it does.
	d.hotplug = openwrt.NewHotplug(d.cfg.Global.HotplugCall, d.cfg.Global.HotplugTimeout, d.log)
	d.setHooks(d.cfg.Global)
	if p := d.cfg.Global.UbusSocket; p != "" {
		d.ubus = newUbusBridge(d, p, d.log)
	}
	vctx, cancelVhosts := context.WithCancel(context.Background())
	defer cancelVhosts()
	d.runCtx = vctx
	// The watcher before anything that reads addresses: the CARP sockets
	// and the sync filter.
	links, err := d.env.WatchLinks(ctx, d.log)
	if err != nil {
		d.log.Warn("link state watching unavailable; link-down demotion disabled", "err", err)
	}
	var linkEvents <-chan vip.LinkEvent
	if links != nil {
		d.links = links
		linkEvents = links.Events()
		defer links.Close()
	}
	d.expiry = d.env.Clock.NewTimer(time.Hour)
	d.expiry.Stop()
	defer d.expiry.Stop()
	// Sync first: its demotion must be in place before any vhid can
	// become master.
	d.startSync()
	d.apply(d.cfg)
	d.startSplitBrain(bgCtx)
	d.startConfigSync(bgCtx)
	d.bg.Add(1)
	go d.runLeases(bgCtx)

	var ctlWG sync.WaitGroup
	ctlWG.Add(1)
	go func() {
		defer ctlWG.Done()
		d.serveControl(ctl)
	}()

	retry := time.NewTicker(ifaceRetry)
	defer retry.Stop()
	d.log.Info("carpd running", "version", d.opts.Version, "vhids", len(d.cfg.VHIDs), "control_socket", d.opts.ControlSocket)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case fn := <-d.cmds:
			fn()
		case t := <-d.events:
			d.transition(t)
		case <-reload:
			// Reading the file is not the loop's business.
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				if err := d.Reload(); err != nil && !errors.Is(err, errStopping) {
					d.log.Error("reload rejected; the running configuration stays", "err", err)
				}
			}()
		case ev := <-linkEvents:
			d.link(ev.Name, ev.Up)
		case name := <-d.netEvents:
			d.networkChanged(name)
		case <-d.syncedCh:
			d.syncWaited = true
			d.log.Info("state sync: initial transfer over; CARP demotion lifted")
			d.updateDemotion()
		case <-retry.C:
			d.openPending()
		case <-d.expiry.C():
			d.expire()
		case <-d.trackWake:
			d.trackReports()
		}
	}

	// Stopping: every vhost bows out at once. The loop goes on serving
	// meanwhile, so their last transitions reach the hooks and ubus, and
	// status still answers.
	d.log.Info("stopping")
	d.closing = true
	d.stopTrackers()
	cancelVhosts()
	vhostsDone := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(vhostsDone)
	}()
	for waiting := true; waiting; {
		select {
		case <-vhostsDone:
			waiting = false
		case fn := <-d.cmds:
			fn()
		case t := <-d.events:
			d.transition(t)
		}
	}
	close(d.loopDone)
	ctl.Close()
	ctlWG.Wait()
	for more := true; more; {
		select {
		case t := <-d.events:
			d.transition(t)
		default:
			more = false
		}
	}
	d.stopServices() // the backup actions of the bow-out run first
	cancelBG()
	d.bg.Wait()
	d.closeBalancers()
	for _, ie := range d.ifaces {
		d.closeIface(ie)
	}
	d.stopSyncNow()
	d.hotplug.Close() // runs the hooks still queued (the last transitions)
	if d.ubus != nil {
		d.ubus.close()
	}
	_ = os.Remove(d.opts.ControlSocket)
	return nil
}

// reloadWait bounds how long a reload request waits for the vhosts it
// removed to bow out (each takes at most carp.BowOutLinger plus two
// netlink calls, all at once).
const reloadWait = 3 * time.Second

// Reload re-reads the configuration and applies it. A bad configuration is
// rejected as a whole and the running one stays. It returns when the
// vhosts the new configuration removed have bowed out (or reloadWait has
// passed); the daemon goes on meanwhile.
func (d *Daemon) Reload() error {
	if d.opts.Load == nil {
		return errors.New("reload is not available")
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := d.opts.Load()
	if err != nil {
		return err
	}
	var stopped []<-chan struct{}
	var rerr error
	if err := d.do(func() { stopped, rerr = d.reload(cfg) }); err != nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	deadline := time.NewTimer(reloadWait)
	defer deadline.Stop()
	for _, ch := range stopped {
		select {
		case <-ch:
		case <-deadline.C:
			return nil
		}
	}
	return nil
}

// reload applies cfg on the loop; it returns the Done channels of the
// vhosts it halted.
func (d *Daemon) reload(cfg *config.Config) ([]<-chan struct{}, error) {
	if d.closing {
		return nil, errStopping
	}
	if cfg.Global.ControlSocket != d.cfg.Global.ControlSocket {
		d.log.Warn("control_socket changes take effect on restart")
	}
	if cfg.Global.UbusSocket != d.cfg.Global.UbusSocket {
		d.log.Warn("ubus_socket changes take effect on restart")
	}
	old := d.cfg.Sync
	d.setHooks(cfg.Global)
	stopped := d.apply(cfg)
	d.reloadSync(old)
	d.cfgs.setConfig(cfg.ConfigSync, cfg.Sync)
	d.reloads++
	d.log.Info("configuration reloaded", "vhids", len(cfg.VHIDs))
	return stopped, nil
}

// setHooks turns the hooks on (with the program and timeout of g) or off
// (hotplug_call empty).
func (d *Daemon) setHooks(g config.Global) {
	if g.HotplugCall != d.hooks {
		d.log.Info("hooks", "hotplug_call", g.HotplugCall) // "" is off
	}
	d.hooks = g.HotplugCall
	if d.hotplug != nil && d.hooks != "" {
		d.hotplug.Configure(g.HotplugCall, g.HotplugTimeout)
	}
}

// onTransition is called on vhost goroutines: it hands the transition to
// the loop and never blocks.
func (d *Daemon) onTransition(t carp.Transition) {
	select {
	case d.events <- t:
	default:
		d.log.Error("transition not recorded: the daemon is not keeping up", "dropped", d.eventsDropped.Add(1))
	}
}

// transition records a transition and passes it on: hooks, ubus, and the
// sync engine when a vhid became master.
func (d *Daemon) transition(t carp.Transition) {
	d.balanceTransition(t)
	r := TransitionRecord{Time: t.At, Interface: t.Interface, VHID: t.VHID,
		From: t.From.String(), To: t.To.String(), Reason: t.Reason}
	if t.Master.IsValid() {
		r.Master = t.Master.String()
	}
	if d.hooks != "" && d.hotplug != nil {
		d.hotplug.Event("ACTION="+r.To, "PREVIOUS="+r.From, "VHID="+strconv.Itoa(int(t.VHID)), "INTERFACE="+t.Interface,
			"VIPS="+strings.Join(prefixStrings(t.Addresses), " "), "MASTER="+r.Master, "REASON="+r.Reason)
	}
	if d.ubus != nil {
		d.ubus.event(r)
	}
	d.recent = append(d.recent, r)
	if len(d.recent) > recentTransitions {
		d.recent = d.recent[len(d.recent)-recentTransitions:]
	}
	if t.To == carp.Master {
		d.takeover()
	}
	d.checkSplitBrain()
	d.updateServices()
}

// takeover tells the sync engine that a vhid became master. The engine
// dumps the kernel's conntrack table for it, which takes long with many
// flows: off the loop, one at a time, and the takeovers that come in
// meanwhile make one more.
func (d *Daemon) takeover() {
	if d.sync == nil {
		return
	}
	if d.takeoverBusy {
		d.takeoverMore = true
		return
	}
	d.takeoverBusy = true
	eng := d.sync.engine
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		eng.Takeover(d.bgCtx)
		d.post(func() {
			d.takeoverBusy = false
			if d.takeoverMore {
				d.takeoverMore = false
				d.takeover()
			}
		})
	}()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func parseLevel(s string) logx.Level {
	switch s {
	case "debug":
		return logx.LevelDebug
	case "warn":
		return logx.LevelWarn
	case "error":
		return logx.LevelError
	}
	return logx.LevelInfo
}
