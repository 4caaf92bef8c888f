package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/kernel"
	"github.com/carpd/carpd/internal/ctsync/wire"
	"github.com/carpd/carpd/internal/demote"
	"github.com/carpd/carpd/internal/logx"
)

// syncRunner is a running state-sync engine with its kernel handle.
type syncRunner struct {
	cfg     config.Sync
	engine  *ctsync.Engine
	closeK  func() error // releases the engine's kernel; nil: nothing
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
}

// startSync starts the engine for cfg.Sync (if enabled, and once the one
// before has stopped).
func (d *Daemon) startSync() {
	sc := d.cfg.Sync
	if !sc.Enabled || d.sync != nil || d.syncStopping || d.closing {
		return
	}
	r, err := d.openSync(sc)
	if err != nil {
		d.log.Error("state sync not started", "err", err)
		d.syncErr = err
		return
	}
	d.syncErr = nil
	d.sync = r
	d.cfgs.setEngine(r.engine)
	d.syncLinkUp = true
	if up, err := d.env.LinkUp(sc.Interface); err == nil {
		d.syncLinkUp = up
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := r.engine.Run(ctx); err != nil {
			d.log.Error("state sync stopped", "err", err)
		}
	}()
	d.log.Info("state sync started", "iface", sc.Interface, "peer", r.engine.Status().Peer,
		"bandwidth", sc.Bandwidth, "window", sc.Window)
}

func (d *Daemon) openSync(sc config.Sync) (*syncRunner, error) {
	key, err := wire.KeyFromConfig(sc.Key)
	if err != nil {
		return nil, err
	}
	dst := sc.Peer
	if sc.Group.IsValid() {
		dst = sc.Group
	}
	// The VIPs: the only addresses of ours a flow of the peer may carry
	// (as its NAT address); kernel.Filter.CheckReceived.
	var vips []netip.Addr
	for _, v := range d.cfg.VHIDs {
		for _, p := range v.Addresses {
			vips = append(vips, p.Addr())
		}
	}
	var local func(netip.Addr) bool
	if d.links != nil {
		local = d.links.IsLocal
	}
	parts, err := d.env.OpenSync(sc, vips, local, d.log)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	r := &syncRunner{cfg: sc, closeK: parts.Close, done: make(chan struct{}), started: time.Now()}
	r.engine, err = ctsync.New(ctsync.Config{
		Key: key, Name: host, Peer: netip.AddrPortFrom(dst, sc.Port),
		Window: sc.Window, Refresh: sc.Refresh, BulkTimeout: sc.BulkTimeout, Bandwidth: sc.Bandwidth,
		Log:   d.log,
		Admit: parts.Admit, MaxTimeout: parts.MaxTimeout,
		OnSynced: func() {
			select {
			case d.syncedCh <- struct{}{}:
			default:
			}
		},
		OnConfig: d.cfgs.fromEngine,
	}, parts.Kernel, parts.Conn)
	if err != nil {
		r.closeKernel()
		parts.Conn.Close()
		return nil, err
	}
	return r, nil
}

// openSyncParts is Env.OpenSync's real one: the kernel's conntrack table
// and a UDP socket bound to the sync link's device.
// local is the watcher's IsLocal: without it the never-local rule could not
// hold, so there is no sync.
func openSyncParts(sc config.Sync, vips []netip.Addr, local func(netip.Addr) bool, log *logx.Logger) (SyncParts, error) {
	if local == nil {
		return SyncParts{}, errors.New("no watcher of the router's addresses, which the sync filter needs")
	}
	conn, err := listenSync(sc)
	if err != nil {
		return SyncParts{}, err
	}
	f := sc.Filter
	// SkipOwnWrites: the events of the peer's flows we inject are not
	// ours to replicate (the engine would ignore them anyway); dropping
	// them at the socket spares a backup a second pass over every flow,
	// and the event overruns (and table re-dumps) of a bulk transfer.
	kc, err := kernel.Open(kernel.Config{Log: log, SkipOwnWrites: true, Filter: kernel.Filter{
		SyncPort: sc.Port, Protocols: f.Protocols, Include: f.Include, Exclude: f.Exclude,
		Zones: f.Zones, Mark: f.Mark, MarkMask: f.MarkMask, MinTCPState: f.MinTCPState, Assured: f.AssuredOnly,
		VIPs: vips, Local: local,
	}})
	if err != nil {
		conn.Close()
		return SyncParts{}, fmt.Errorf("conntrack: %w", err)
	}
	// What we receive goes through the filter of what we send.
	return SyncParts{Kernel: kc, Conn: conn, Admit: kc.Admit, MaxTimeout: kc.MaxTimeout, Close: kc.Close}, nil
}

// closeKernel releases the engine's kernel.
func (r *syncRunner) closeKernel() {
	if r.closeK != nil {
		_ = r.closeK()
	}
}

// stopSyncNow stops the engine and waits for it (Run, at the end).
func (d *Daemon) stopSyncNow() {
	if d.sync == nil {
		return
	}
	d.sync.cancel()
	<-d.sync.done
	d.sync.closeKernel()
	d.sync = nil
}

// stopSync stops the engine without waiting for it: the engine may be in
// the middle of a conntrack dump. The next engine starts when it is done.
func (d *Daemon) stopSync() {
	r := d.sync
	if r == nil {
		return
	}
	d.sync, d.syncStopping = nil, true
	r.cancel()
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		<-r.done
		r.closeKernel()
		d.post(func() {
			d.syncStopping = false
			d.startSync()
			d.updateDemotion()
		})
	}()
}

// reloadSync restarts the engine when its configuration changed. The new
// session makes the peer resend its table; CARP is not demoted again.
func (d *Daemon) reloadSync(old config.Sync) {
	if sameSync(old, d.cfg.Sync) && (d.sync != nil || d.syncStopping || !d.cfg.Sync.Enabled) {
		return
	}
	d.log.Info("state sync configuration changed; restarting the sync engine")
	d.stopSync()
	d.startSync()
}

// sameSync reports whether two sync configurations are the same: what
// reflect.DeepEqual would say (but for nil and empty lists, the same
// here), without linking it (8 KB on MIPS). TestSameSyncEveryField fails
// when config.Sync gets a field this does not compare.
func sameSync(a, b config.Sync) bool {
	fa, fb := a.Filter, b.Filter
	return a.Enabled == b.Enabled && a.Interface == b.Interface && a.Peer == b.Peer && a.Group == b.Group &&
		a.Port == b.Port && a.Key == b.Key && a.Bandwidth == b.Bandwidth && a.Window == b.Window &&
		a.Refresh == b.Refresh && a.BulkTimeout == b.BulkTimeout && a.Demotion == b.Demotion &&
		string(fa.Protocols) == string(fb.Protocols) && slices.Equal(fa.Include, fb.Include) &&
		slices.Equal(fa.Exclude, fb.Exclude) && slices.Equal(fa.Zones, fb.Zones) && fa.Mark == fb.Mark &&
		fa.MarkMask == fb.MarkMask && fa.MinTCPState == fb.MinTCPState && fa.AssuredOnly == fb.AssuredOnly &&
		a.LeaseSync == b.LeaseSync && a.LeaseFile == b.LeaseFile
}

// syncLinkDown reports whether sync is on and its interface's link is
// down (source sync_link, like pfsync's carp demotion on a down syncdev).
func (d *Daemon) syncLinkDown() bool {
	return d.cfg.Sync.Enabled && !d.syncLinkUp
}

// syncBulkFailed reports whether the bulk transfer failed (source
// sync_bulk), see bulkFailed.
func (d *Daemon) syncBulkFailed() bool {
	return d.sync != nil && bulkFailed(d.sync.engine.Status())
}

// periodic runs every splitCheckEvery on the loop: the split-brain
// check, and sync_bulk, which follows engine state the engine does not
// announce (the peer coming or going, its table completing after a
// failed bulk): without this the source changed only with some other
// trigger (a status call, a transition).
func (d *Daemon) periodic() {
	d.checkSplitBrain()
	if cur, _ := d.sources.Get(config.DefaultGroup, demote.SourceSyncBulk); cur.Value != boolInt(d.syncBulkFailed()) {
		d.updateDemotion()
	}
}

// bulkFailed: the engine gave up waiting for the peer's table, no
// complete table came since, and the peer is there: this router lacks
// the table of a live peer, which should rather be master. A peer that
// is down (or that we cannot authenticate) demotes nothing: a router
// alone is not less fit than nobody, and its sync hold is bounded by
// bulk_timeout.
func bulkFailed(st ctsync.Status) bool {
	return st.Bulk.TimedOut && st.PeerUp
}

// syncDemotion is the demotion while the initial bulk transfer has not
// completed (OpenBSD pfsync demotes by 32), bounded by the engine's bulk
// timeout.
func (d *Daemon) syncDemotion() int {
	if d.sync == nil || d.syncWaited || d.sync.engine.Synced() {
		return 0
	}
	return int(d.cfg.Sync.Demotion)
}
