package daemon

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/openwrt"
)

// Everything in this file runs on the loop (see the package comment).

// apply makes the running vhosts match cfg: vhosts that are gone stop
// gracefully, new ones start, changed ones are updated without a state
// change (new timing, password, addresses or peers), unchanged ones are not
// touched. The vhosts that stop bow out on their own goroutines, all at
// once; apply returns their Done channels and does not wait.
func (d *Daemon) apply(cfg *config.Config) []<-chan struct{} {
	if d.opts.Level != nil {
		d.opts.Level.Set(parseLevel(cfg.Global.LogLevel))
	}
	want := map[string]config.VHID{}
	nodes := nodeConfigs(cfg)
	for _, v := range nodes {
		want[v.Key()] = v
	}
	var stopped []<-chan struct{}
	for key, ve := range d.vhosts {
		if _, ok := want[key]; !ok {
			if done := d.haltVHost(ve); done != nil {
				stopped = append(stopped, done)
			}
			delete(d.vhosts, key)
		}
	}
	d.cfg = cfg
	d.applyBalancers(cfg)
	for _, vc := range nodes {
		key := vc.Key()
		ve, ok := d.vhosts[key]
		switch {
		case !ok:
			ve = &vhostEntry{cfg: vc, demote: -1}
			d.vhosts[key] = ve
			d.startVHost(ve)
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
	d.closeUnusedIfaces()
	d.applyTrackers(cfg)
	d.updateDemotion()
	d.applyServices(cfg)
	return stopped
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

// iface returns the entry of a device, opening it if it is not open.
func (d *Daemon) iface(name string) *ifaceEntry {
	ie, ok := d.ifaces[name]
	if !ok {
		ie = &ifaceEntry{name: name, linkUp: true}
		d.ifaces[name] = ie
	}
	if ie.iface == nil {
		d.openIface(ie)
	}
	return ie
}

func (d *Daemon) openIface(ie *ifaceEntry) {
	var addrs carp.IfaceAddrs // no typed nil: a nil watcher is no watcher
	if d.links != nil {
		addrs = d.links
	}
	i, err := d.env.OpenIface(ie.name, addrs, d.log)
	if err != nil {
		if ie.err == nil || ie.err.Error() != err.Error() {
			d.log.Error("cannot open interface; retrying", "iface", ie.name, "err", err)
		}
		ie.err = err
		return
	}
	v, err := d.env.OpenAddresses(ie.name, d.log)
	if err != nil {
		i.Close()
		ie.err = err
		d.log.Error("cannot manage addresses on interface; retrying", "iface", ie.name, "err", err)
		return
	}
	ie.iface, ie.vips, ie.err = i, v, nil
	if up, err := d.env.LinkUp(ie.name); err == nil {
		ie.linkUp = up
	}
}

func (d *Daemon) closeIface(ie *ifaceEntry) {
	if ie.iface != nil {
		ie.iface.Close()
		ie.vips.Close()
		ie.iface, ie.vips = nil, nil
	}
}

// closeUnusedIfaces closes the interfaces no vhost uses any more, neither
// a configured one nor one still bowing out there.
func (d *Daemon) closeUnusedIfaces() {
	for name, ie := range d.ifaces {
		used := false
		for _, ve := range d.vhosts {
			used = used || ve.dev == name
		}
		for s := range d.stopping {
			used = used || s.dev == name
		}
		if !used {
			d.closeIface(ie)
			delete(d.ifaces, name)
		}
	}
}

// resolveTimeout bounds the ubus call that resolves a network name.
const resolveTimeout = time.Second

// startVHost starts a vhost that is not running, once its interface
// resolves to a device.
func (d *Daemon) startVHost(ve *vhostEntry) {
	if ve.v == nil && !d.closing {
		d.resolve(ve)
	}
}

// resolve finds the device of ve's interface and places ve there. A device
// name resolves at once; an OpenWrt network name is asked of netifd over
// ubus, off the loop, and placed when the answer comes (unless ve was
// halted or removed meanwhile).
func (d *Daemon) resolve(ve *vhostEntry) {
	name := ve.cfg.Interface
	if d.env.IsDevice(name) {
		d.place(ve, name, false, nil)
		return
	}
	ask := d.env.ResolveNetwork
	if ask == nil && d.ubus != nil {
		cl := d.ubus.cl
		ask = func(ctx context.Context, name string) (string, bool, error) {
			return openwrt.ResolveInterface(ctx, cl, name)
		}
	}
	if ask == nil {
		d.place(ve, "", false, fmt.Errorf("%q: %w", name, openwrt.ErrNoDevice))
		return
	}
	if ve.resolving {
		ve.again = true // the answer on its way may be stale
		return
	}
	ve.resolving = true
	gen := ve.gen
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		ctx, cancel := context.WithTimeout(d.bgCtx, resolveTimeout)
		dev, netw, err := ask(ctx, name)
		cancel()
		d.post(func() {
			if ve.gen != gen {
				return
			}
			ve.resolving = false
			if ve.again {
				ve.again = false
				d.resolve(ve)
				return
			}
			d.place(ve, dev, netw, err)
		})
	}()
}

// place runs ve on dev: starts it there, or moves it there from another
// device (gracefully: a master bows out first). A vhost that runs stays
// where it is when its network does not resolve.
func (d *Daemon) place(ve *vhostEntry, dev string, netw bool, err error) {
	if d.closing {
		return
	}
	if err != nil {
		if ve.v == nil {
			if ve.err == nil || ve.err.Error() != err.Error() {
				d.log.Error("interface not available; retrying", "iface", ve.cfg.Interface, "vhid", ve.cfg.VHID, "err", err)
			}
			ve.err = err
		}
		return
	}
	if ve.v != nil {
		if dev == ve.dev {
			return
		}
		d.log.Warn("network moved to another device", "network", ve.cfg.Interface, "was", ve.dev, "now", dev, "vhid", ve.cfg.VHID)
		d.haltVHost(ve)
	} else if netw && dev != ve.dev {
		d.log.Info("network resolved", "network", ve.cfg.Interface, "iface", dev, "vhid", ve.cfg.VHID)
	}
	ve.dev, ve.netw, ve.err = dev, netw, nil
	if _, busy := d.stopping[slot{dev, ve.cfg.VHID}]; busy {
		return // vhostStopped starts it once the one before has bowed out
	}
	ve.vc = vhostConfig(d.cfg, ve.cfg, dev)
	ie := d.iface(dev)
	if ie.iface == nil {
		ve.err = ie.err
		return // openPending starts it once the interface opens
	}
	var opts []carp.VHostOption
	if d.env.Clock != nil {
		opts = append(opts, carp.WithClock(d.env.Clock))
	}
	opts = append(opts, d.confirmOption(ve))
	ve.gate = &vipGate{Addresses: ie.vips}
	if balanced(ve.cfg) {
		ve.gate.Addresses = d.startBalance(ve.cfg, dev, ie)
	}
	v := carp.NewVHost(ve.vc, ie.iface, ve.gate, d.log, d.onTransition, opts...)
	ie.iface.Attach(v, ve.vc)
	ctx, cancel := context.WithCancel(d.runCtx)
	ve.v, ve.cancel = v, cancel
	if !ie.linkUp {
		v.SetLinkInitial(false)
	}
	ve.demote = int(d.demotion(ve))
	v.SetDemoteInitial(uint8(ve.demote))
	s := slot{dev, ve.cfg.VHID}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		v.Run(ctx)
		d.post(func() { d.vhostStopped(s, v) })
	}()
}

// haltVHost stops a running vhost gracefully, without waiting: it bows
// out on its own goroutine and keeps its slot (device and vhid) until it
// is done. The entry stays, not running. It returns the vhost's Done
// channel, or nil when it was not running.
func (d *Daemon) haltVHost(ve *vhostEntry) <-chan struct{} {
	ve.gen++ // a lookup under way is for the vhost as it was
	ve.resolving, ve.again = false, false
	if ve.v == nil {
		return nil
	}
	v := ve.v
	ve.cancel()
	d.stopping[slot{ve.dev, ve.cfg.VHID}] = v
	ve.v, ve.cancel, ve.demote = nil, nil, -1
	return v.Done()
}

// vhostStopped: the vhost of slot s has returned from Run. A halted one
// frees its slot; its interface closes if nothing else uses it, and a
// vhost waiting for the slot starts.
func (d *Daemon) vhostStopped(s slot, v *carp.VHost) {
	if d.stopping[s] != v {
		return // stopped with the daemon, not halted
	}
	delete(d.stopping, s)
	if ie := d.ifaces[s.dev]; ie != nil && ie.iface != nil {
		ie.iface.Detach(s.vhid)
	}
	d.closeUnusedIfaces()
	d.openPending()
}

// networkChanged re-resolves the vhosts configured with an OpenWrt network
// name after netifd reported a change of it; a vhost whose device changed
// moves to the new device.
func (d *Daemon) networkChanged(name string) {
	for _, ve := range d.vhosts {
		if ve.cfg.Interface != name || !ve.netw && ve.v != nil {
			continue
		}
		d.resolve(ve)
	}
}

func (d *Daemon) openPending() {
	for _, ve := range d.vhosts {
		if ve.v == nil && !ve.resolving {
			d.startVHost(ve)
		}
	}
}

// link handles a link state change of an interface: its vhosts go to INIT
// (or back to BACKUP), and every vhost of the box is demoted by one per
// down interface, so LAN and WAN fail over together (OpenBSD's carpdev
// demotion of the group "carp", docs/carp-protocol.md#demotion).
func (d *Daemon) link(name string, up bool) {
	if d.cfg.Sync.Enabled && name == d.cfg.Sync.Interface && up != d.syncLinkUp && !d.closing {
		d.syncLinkUp = up
		d.log.Warn("sync link state changed", "iface", name, "up", up)
		d.updateDemotion()
	}
	ie, ok := d.ifaces[name]
	if !ok || ie.linkUp == up || d.closing {
		return
	}
	ie.linkUp = up
	d.log.Warn("link state changed", "iface", name, "up", up)
	for _, ve := range d.vhosts {
		if ve.v != nil && ve.dev == name {
			ve.v.SetLink(up)
		}
	}
	d.updateDemotion()
}

func describeTarget(vhid uint8, iface string) string {
	if iface == "" {
		iface = "any interface"
	}
	if vhid == 0 {
		return "no vhid configured on " + iface
	}
	return "no vhid " + strconv.Itoa(int(vhid)) + " configured on " + iface
}
