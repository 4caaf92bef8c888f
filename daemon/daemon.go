// Package daemon wires carpd together: it turns a config.Config into running
// CARP virtual hosts (package carp) on their interfaces, acts on their
// decisions through package vip, watches link state, sums the demotion
// sources, serves the control socket and applies reloads. It is the only
// package that knows all the others.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/carpd/carpd/carp"
	"github.com/carpd/carpd/config"
	"github.com/carpd/carpd/ctsync"
	"github.com/carpd/carpd/openwrt"
	"github.com/carpd/carpd/vip"
)

// MaintenanceDemotion is added to every vhid in maintenance mode: more
// than any automatic source, like OPNsense's +240, and it leaves room for
// further manual demotion.
const MaintenanceDemotion = 240

// Options are what main hands to the daemon besides the config.
type Options struct {
	Log *slog.Logger
	// Level is the log level variable, changed on reload.
	Level *slog.LevelVar
	// Load re-reads the configuration on reload (SIGHUP or the control
	// socket). Nil disables reload.
	Load func() (*config.Config, error)
	// ControlSocket overrides the config's control socket path.
	ControlSocket string
	Version       string
}

// ifaceRetry is how often an interface that could not be opened (it may not
// exist yet, like a bridge created later at boot) is tried again.
const ifaceRetry = 2 * time.Second

// recentTransitions is how many transitions status keeps.
const recentTransitions = 32

// Daemon is a running carpd.
type Daemon struct {
	log     *slog.Logger
	opts    Options
	started time.Time

	mu      sync.Mutex // guards everything below it
	cfg     *config.Config
	ifaces  map[string]*ifaceEntry
	vhosts  map[string]*vhostEntry // by config.VHID.Key()
	manual  int                    // global manual demotion (carpd demote)
	maint   bool                   // maintenance mode, persisted in the state file
	reloads int

	hotplug *openwrt.Hotplug // set before any vhost starts, then read-only
	ubus    *ubusBridge      // likewise; nil without ubus_socket

	trMu   sync.Mutex // guards recent; taken by vhost goroutines, never with mu
	recent []TransitionRecord

	runCtx context.Context
	wg     sync.WaitGroup // vhost goroutines

	// netEvents carries netifd's network.interface events (network names)
	// from the ubus listener to Run's loop.
	netEvents chan string

	// State sync; guarded by mu.
	sync       *syncRunner
	syncErr    error
	syncWaited bool // the initial transfer completed or timed out once
	// syncedCh: the engine finished its first bulk transfer; takeoverCh: a
	// vhid became MASTER. Both wake Run's loop (never block the senders).
	syncedCh   chan struct{}
	takeoverCh chan struct{}
}

type ifaceEntry struct {
	name   string
	iface  *carp.Iface // nil until opened
	vips   *vip.Linux
	linkUp bool
	err    error
}

type vhostEntry struct {
	cfg    config.VHID
	vc     carp.VHostConfig // Interface is the resolved device
	v      *carp.VHost      // nil while its interface is not open
	cancel context.CancelFunc
	manual int    // per-vhid manual demotion
	dev    string // the device cfg.Interface resolved to; "" while unresolved
	netw   bool   // cfg.Interface is an OpenWrt network name
	err    error  // why the vhost is not running
}

// TransitionRecord is one state change as shown by status.
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
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.ControlSocket == "" {
		opts.ControlSocket = cfg.Global.ControlSocket
	}
	d := &Daemon{
		log: opts.Log, opts: opts, cfg: cfg, started: time.Now(),
		ifaces: map[string]*ifaceEntry{}, vhosts: map[string]*vhostEntry{},
		netEvents: make(chan string, 16),
		syncedCh:  make(chan struct{}, 1), takeoverCh: make(chan struct{}, 1),
	}
	d.maint = d.loadState().Maintenance
	if d.maint {
		d.log.Warn("maintenance mode is on (from the state file): every vhid is demoted", "state_file", d.statePath())
	}
	return d
}

// Run runs until ctx is cancelled or a fatal error, then stops every vhost
// gracefully (bow-out, VIPs removed) and returns. reload receives a value
// for each SIGHUP.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	ctl, err := listenControl(d.opts.ControlSocket)
	if err != nil {
		return err
	}
	if p := d.cfg.Global.HotplugCall; p != "" {
		d.hotplug = openwrt.NewHotplug(p, d.cfg.Global.HotplugTimeout, d.log)
		// After the vhosts: their last transitions (to INIT) still run.
		defer d.hotplug.Close()
	}
	if p := d.cfg.Global.UbusSocket; p != "" {
		d.ubus = newUbusBridge(d, p, d.log)
		defer d.ubus.close()
	}
	vctx, cancelVhosts := context.WithCancel(context.Background())
	d.mu.Lock()
	d.runCtx = vctx
	// Sync first: its demotion must be in place before any vhid can
	// become master.
	d.startSyncLocked()
	d.applyLocked(d.cfg)
	d.mu.Unlock()

	links, err := vip.WatchLinks(ctx, d.log)
	if err != nil {
		d.log.Warn("link state watching unavailable; link-down demotion disabled", "err", err)
	}
	var linkEvents <-chan vip.LinkEvent
	if links != nil {
		linkEvents = links.Events()
		defer links.Close()
	}

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
		case <-reload:
			if err := d.Reload(); err != nil {
				d.log.Error("reload rejected; the running configuration stays", "err", err)
			}
		case ev := <-linkEvents:
			d.link(ev.Name, ev.Up)
		case name := <-d.netEvents:
			d.networkChanged(name)
		case <-d.syncedCh:
			d.mu.Lock()
			d.syncWaited = true
			d.log.Info("state sync: initial transfer over; CARP demotion lifted")
			d.updateDemotionLocked()
			d.mu.Unlock()
		case <-d.takeoverCh:
			d.mu.Lock()
			if d.sync != nil {
				d.sync.engine.Takeover(ctx)
			}
			d.mu.Unlock()
		case <-retry.C:
			d.mu.Lock()
			d.openPendingLocked()
			d.mu.Unlock()
		}

	}

	d.log.Info("stopping")
	ctl.Close()
	ctlWG.Wait()
	cancelVhosts()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ie := range d.ifaces {
		d.closeIfaceLocked(ie)
	}
	d.stopSyncLocked()
	_ = os.Remove(d.opts.ControlSocket)
	return nil
}

// Reload re-reads the configuration and applies it. A bad configuration is
// rejected as a whole and the running one stays.
func (d *Daemon) Reload() error {
	if d.opts.Load == nil {
		return errors.New("reload is not available")
	}
	cfg, err := d.opts.Load()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cfg.Global.ControlSocket != d.cfg.Global.ControlSocket {
		d.log.Warn("control_socket changes take effect on restart")
	}
	old := d.cfg.Sync
	d.applyLocked(cfg)
	d.reloadSyncLocked(old)
	d.reloads++
	d.log.Info("configuration reloaded", "vhids", len(cfg.VHIDs))
	return nil
}

// applyLocked makes the running vhosts match cfg: vhosts that are gone stop
// gracefully, new ones start, changed ones are updated without a state
// change (new timing, password, addresses or peers), unchanged ones are not
// touched.
func (d *Daemon) applyLocked(cfg *config.Config) {
	if d.opts.Level != nil {
		d.opts.Level.Set(parseLevel(cfg.Global.LogLevel))
	}
	want := map[string]config.VHID{}
	for _, v := range cfg.VHIDs {
		want[v.Key()] = v
	}
	for key, ve := range d.vhosts {
		if _, ok := want[key]; !ok {
			d.stopVHostLocked(key, ve)
		}
	}
	d.cfg = cfg
	for _, vc := range cfg.VHIDs {
		key := vc.Key()
		ve, ok := d.vhosts[key]
		switch {
		case !ok:
			ve = &vhostEntry{cfg: vc}
			d.vhosts[key] = ve
			d.startVHostLocked(ve)
		case ve.v == nil:
			ve.cfg = vc
		default:
			hc := vhostConfig(cfg, vc, ve.dev)
			ve.cfg = vc
			if !equalVHostConfig(ve.vc, hc) {
				ve.vc = hc
				ve.v.Update(hc)
				d.ifaces[ve.dev].iface.Attach(ve.v, hc)
			}
		}
	}
	// Interfaces no vhost uses any more are closed.
	for name, ie := range d.ifaces {
		used := false
		for _, ve := range d.vhosts {
			used = used || ve.dev == name
		}
		if !used {
			d.closeIfaceLocked(ie)
			delete(d.ifaces, name)
		}
	}
	d.updateDemotionLocked()
}

func vhostConfig(cfg *config.Config, v config.VHID, dev string) carp.VHostConfig {
	preempt := cfg.Global.Preempt
	if v.Preempt != nil {
		preempt = *v.Preempt
	}
	return carp.VHostConfig{
		Interface: dev, VHID: v.VHID, Password: v.Password,
		Addresses: slices.Clone(v.Addresses), Peers: slices.Clone(v.Peers),
		Params: carp.Params{AdvBase: v.AdvBase, AdvSkew: v.AdvSkew, Preempt: preempt,
			DemoteToSkew: cfg.Global.DemoteToSkew},
	}
}

func equalVHostConfig(a, b carp.VHostConfig) bool {
	return a.Interface == b.Interface && a.VHID == b.VHID && a.Params == b.Params &&
		a.Password == b.Password && slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Peers, b.Peers)
}

func (d *Daemon) ifaceLocked(name string) *ifaceEntry {
	ie, ok := d.ifaces[name]
	if !ok {
		ie = &ifaceEntry{name: name, linkUp: true}
		d.ifaces[name] = ie
	}
	if ie.iface == nil {
		d.openIfaceLocked(ie)
	}
	return ie
}

func (d *Daemon) openIfaceLocked(ie *ifaceEntry) {
	i, err := carp.OpenIface(ie.name, d.log)
	if err != nil {
		if ie.err == nil || ie.err.Error() != err.Error() {
			d.log.Error("cannot open interface; retrying", "iface", ie.name, "err", err)
		}
		ie.err = err
		return
	}
	v, err := vip.New(ie.name, d.log)
	if err != nil {
		i.Close()
		ie.err = err
		d.log.Error("cannot manage addresses on interface; retrying", "iface", ie.name, "err", err)
		return
	}
	ie.iface, ie.vips, ie.err = i, v, nil
	if up, err := vip.LinkUp(ie.name); err == nil {
		ie.linkUp = up
	}
}

func (d *Daemon) closeIfaceLocked(ie *ifaceEntry) {
	if ie.iface != nil {
		ie.iface.Close()
		ie.vips.Close()
		ie.iface, ie.vips = nil, nil
	}
}

// resolveTimeout bounds the ubus call that resolves a network name.
const resolveTimeout = time.Second

func (d *Daemon) resolveLocked(name string) (string, bool, error) {
	var u openwrt.Caller
	if d.ubus != nil {
		u = d.ubus.cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	return openwrt.ResolveInterface(ctx, u, name)
}

func (d *Daemon) startVHostLocked(ve *vhostEntry) {
	dev, netw, err := d.resolveLocked(ve.cfg.Interface)
	if err != nil {
		if ve.err == nil || ve.err.Error() != err.Error() {
			d.log.Error("interface not available; retrying", "iface", ve.cfg.Interface, "vhid", ve.cfg.VHID, "err", err)
		}
		ve.err = err
		return // openPendingLocked retries
	}
	if netw {
		d.log.Info("network resolved", "network", ve.cfg.Interface, "iface", dev, "vhid", ve.cfg.VHID)
	}
	ve.dev, ve.netw, ve.err = dev, netw, nil
	ve.vc = vhostConfig(d.cfg, ve.cfg, dev)
	ie := d.ifaceLocked(dev)
	if ie.iface == nil {
		ve.err = ie.err
		return // openPendingLocked starts it once the interface opens
	}
	v := carp.NewVHost(ve.vc, ie.iface, ie.vips, d.log, d.onTransition)
	ie.iface.Attach(v, ve.vc)
	ctx, cancel := context.WithCancel(d.runCtx)
	ve.v, ve.cancel = v, cancel
	if !ie.linkUp {
		v.SetLinkInitial(false)
	}
	v.SetDemoteInitial(d.demotionLocked(ve))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		v.Run(ctx)
	}()
}

func (d *Daemon) stopVHostLocked(key string, ve *vhostEntry) {
	d.haltVHostLocked(ve)
	delete(d.vhosts, key)
}

// haltVHostLocked stops a running vhost gracefully and leaves its entry
// pending.
func (d *Daemon) haltVHostLocked(ve *vhostEntry) {
	if ve.v != nil {
		ve.cancel()
		<-ve.v.Done() // bounded: the bow-out linger plus two netlink calls
		if ie := d.ifaces[ve.dev]; ie != nil && ie.iface != nil {
			ie.iface.Detach(ve.cfg.VHID)
		}
		ve.v = nil
	}
}

// networkChanged re-resolves the vhosts configured with an OpenWrt network
// name after netifd reported a change of it; a vhost whose device changed
// moves to the new device (gracefully: a master bows out first).
func (d *Daemon) networkChanged(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ve := range d.vhosts {
		if ve.cfg.Interface != name || !ve.netw && ve.v != nil {
			continue
		}
		dev, _, err := d.resolveLocked(name)
		if err != nil || dev == ve.dev && ve.v != nil {
			continue
		}
		d.log.Warn("network moved to another device", "network", name, "was", ve.dev, "now", dev, "vhid", ve.cfg.VHID)
		d.haltVHostLocked(ve)
		d.startVHostLocked(ve)
	}
}

func (d *Daemon) openPendingLocked() {
	for _, ve := range d.vhosts {
		if ve.v == nil {
			d.startVHostLocked(ve)
		}
	}
}

// link handles a link state change of an interface: its vhosts go to INIT
// (or back to BACKUP), and every vhost of the box is demoted by one per
// down interface, so LAN and WAN fail over together (OpenBSD's carpdev
// demotion of the group "carp", §3.5).
func (d *Daemon) link(name string, up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ie, ok := d.ifaces[name]
	if !ok || ie.linkUp == up {
		return
	}
	ie.linkUp = up
	d.log.Warn("link state changed", "iface", name, "up", up)
	for _, ve := range d.vhosts {
		if ve.v != nil && ve.dev == name {
			ve.v.SetLink(up)
		}
	}
	d.updateDemotionLocked()
}

func (d *Daemon) linkDemotionLocked() int {
	n := 0
	for _, ie := range d.ifaces {
		if !ie.linkUp {
			n++
		}
	}
	return n
}

func (d *Daemon) demotionLocked(ve *vhostEntry) uint8 {
	n := d.manual + ve.manual + d.linkDemotionLocked() + d.syncDemotionLocked()
	if d.maint {
		n += MaintenanceDemotion
	}
	return uint8(min(max(n, 0), 255))
}

// Maintenance turns maintenance mode on or off: every vhid is demoted by
// MaintenanceDemotion so the peers take over, until it is turned off. The
// setting is saved in the state file and survives restarts of carpd.
func (d *Daemon) Maintenance(enable bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.saveState(persisted{Maintenance: enable}); err != nil {
		return fmt.Errorf("saving maintenance mode: %w", err)
	}
	if d.maint != enable {
		d.maint = enable
		d.log.Warn("maintenance mode", "enabled", enable)
		d.updateDemotionLocked()
	}
	return nil
}

func (d *Daemon) updateDemotionLocked() {
	for _, ve := range d.vhosts {
		if ve.v != nil {
			ve.v.SetDemote(d.demotionLocked(ve))
		}
	}
}

// Demote changes the manual demotion by delta (negative undoes): for every
// vhost when vhid is 0 and iface empty, else for the vhosts that match both
// (vhid 0 matches every vhid, an empty iface every interface; the
// interface is the configured name or the device it resolved to). Like
// OpenBSD's carpdemote the counter never goes below zero, and it never
// goes above MaxDemotion: the sum saturates, it never wraps.
func (d *Daemon) Demote(vhid uint8, iface string, delta int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.demote(vhid, iface, delta)
}

func (d *Daemon) demote(vhid uint8, iface string, delta int) error {
	if vhid == 0 && iface == "" {
		d.manual = addDemotion(d.manual, delta)
		d.log.Info("manual demotion", "demotion", d.manual)
	} else {
		found := false
		for _, ve := range d.vhosts {
			if (vhid == 0 || ve.cfg.VHID == vhid) && (iface == "" || iface == ve.cfg.Interface || iface == ve.dev) {
				ve.manual = addDemotion(ve.manual, delta)
				found = true
				d.log.Info("manual demotion", "vhid", ve.cfg.VHID, "iface", ve.cfg.Interface, "demotion", ve.manual)
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrNotFound, describeTarget(vhid, iface))
		}
	}
	d.updateDemotionLocked()
	return nil
}

// MaxDemotion is the largest value of a demotion counter: the demote byte
// of the advertisement.
const MaxDemotion = 255

// addDemotion returns cur+delta clamped to [0, MaxDemotion], for cur in
// that range and any delta, without overflow.
func addDemotion(cur, delta int) int {
	switch {
	case delta >= MaxDemotion-cur:
		return MaxDemotion
	case delta <= -cur:
		return 0
	}
	return cur + delta
}

func describeTarget(vhid uint8, iface string) string {
	switch {
	case iface == "":
		return fmt.Sprintf("no vhid %d configured", vhid)
	case vhid == 0:
		return fmt.Sprintf("no vhid configured on %s", iface)
	}
	return fmt.Sprintf("no vhid %d configured on %s", vhid, iface)
}

// Resync asks the sync peer for a full bulk transfer.
func (d *Daemon) Resync() error {
	d.mu.Lock()
	r := d.sync
	d.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w: connection-state sync is not configured", ErrNotSupported)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.engine.Resync(ctx)
	return nil
}

// onTransition is called on vhost goroutines: it must not block and must not
// take d.mu (the daemon may be waiting on that vhost while holding it).
func (d *Daemon) onTransition(t carp.Transition) {
	r := TransitionRecord{Time: t.At, Interface: t.Interface, VHID: t.VHID,
		From: t.From.String(), To: t.To.String(), Reason: t.Reason}
	if t.Master.IsValid() {
		r.Master = t.Master.String()
	}
	if d.hotplug != nil {
		vips := make([]string, len(t.Addresses))
		for i, p := range t.Addresses {
			vips[i] = p.String()
		}
		d.hotplug.Event("ACTION="+t.To.String(), "PREVIOUS="+t.From.String(),
			fmt.Sprintf("VHID=%d", t.VHID), "INTERFACE="+t.Interface,
			"VIPS="+strings.Join(vips, " "), "MASTER="+r.Master, "REASON="+t.Reason)
	}
	if t.To == carp.Master {
		select {
		case d.takeoverCh <- struct{}{}:
		default:
		}
	}
	if d.ubus != nil {
		d.ubus.event(StateEvent{Interface: t.Interface, VHID: t.VHID, From: r.From, To: r.To,
			Reason: r.Reason, Master: r.Master})
	}
	d.trMu.Lock()
	d.recent = append(d.recent, r)
	if len(d.recent) > recentTransitions {
		d.recent = d.recent[len(d.recent)-recentTransitions:]
	}
	d.trMu.Unlock()
}

// Status is the whole daemon status: `carpd status --json`.
type Status struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Now is the daemon's clock when the status was taken: clients (the
	// LuCI page) compute "since" and "seen ago" from it, not from their
	// own clock.
	Now         time.Time          `json:"now"`
	Started     time.Time          `json:"started"`
	Reloads     int                `json:"reloads"`
	Demotion    DemotionStatus     `json:"demotion"`
	VHIDs       []carp.Status      `json:"vhids"`
	Interfaces  []InterfaceStatus  `json:"interfaces"`
	Transitions []TransitionRecord `json:"transitions"`
	Sync        SyncStatus         `json:"sync"`
}

// DemotionStatus breaks the demotion down by source.
type DemotionStatus struct {
	Manual      int  `json:"manual"`
	Link        int  `json:"link"`
	Sync        int  `json:"sync"`
	Maintenance bool `json:"maintenance"`
}

// SyncStatus is the state-sync part of the status.
type SyncStatus struct {
	Enabled   bool   `json:"enabled"`
	Interface string `json:"interface,omitempty"`
	Error     string `json:"error,omitempty"`
	ctsync.Status
}

// InterfaceStatus is one interface carpd runs CARP on.
type InterfaceStatus struct {
	Name   string          `json:"name"`
	LinkUp bool            `json:"link_up"`
	Error  string          `json:"error,omitempty"`
	Drops  carp.IfaceStats `json:"drops"`
}

// Status returns a snapshot of everything.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	s := Status{Version: d.opts.Version, PID: os.Getpid(), Now: time.Now(), Started: d.started, Reloads: d.reloads,
		Demotion: DemotionStatus{Manual: d.manual, Link: d.linkDemotionLocked(), Sync: d.syncDemotionLocked(), Maintenance: d.maint}}
	s.Sync.Enabled, s.Sync.Interface = d.cfg.Sync.Enabled, d.cfg.Sync.Interface
	if d.sync != nil {
		s.Sync.Status = d.sync.engine.Status()
	}
	if d.syncErr != nil {
		s.Sync.Error = d.syncErr.Error()
	}
	for _, ve := range d.vhosts {
		if ve.v != nil {
			st := ve.v.Status()
			if ve.netw {
				st.Network = ve.cfg.Interface
			}
			s.VHIDs = append(s.VHIDs, st)
			continue
		}
		st := carp.Status{Interface: ve.cfg.Interface, VHID: ve.cfg.VHID,
			State: carp.Init.String(), AdvBase: ve.cfg.AdvBase, AdvSkew: ve.cfg.AdvSkew,
			Addresses: prefixStrings(ve.cfg.Addresses)}
		if ve.err != nil {
			st.Error = ve.err.Error()
		}
		s.VHIDs = append(s.VHIDs, st)
	}
	for _, ie := range d.ifaces {
		is := InterfaceStatus{Name: ie.name, LinkUp: ie.linkUp}
		if ie.err != nil {
			is.Error = ie.err.Error()
		}
		if ie.iface != nil {
			is.Drops = ie.iface.Stats()
		}
		s.Interfaces = append(s.Interfaces, is)
	}
	d.mu.Unlock()
	d.trMu.Lock()
	s.Transitions = slices.Clone(d.recent)
	d.trMu.Unlock()
	sort.Slice(s.VHIDs, func(i, j int) bool {
		if s.VHIDs[i].Interface != s.VHIDs[j].Interface {
			return s.VHIDs[i].Interface < s.VHIDs[j].Interface
		}
		return s.VHIDs[i].VHID < s.VHIDs[j].VHID
	})
	sort.Slice(s.Interfaces, func(i, j int) bool { return s.Interfaces[i].Name < s.Interfaces[j].Name })
	if s.VHIDs == nil {
		s.VHIDs = []carp.Status{}
	}
	if s.Transitions == nil {
		s.Transitions = []TransitionRecord{}
	}
	return s
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func parseLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
