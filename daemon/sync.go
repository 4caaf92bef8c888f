package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"time"

	"github.com/carpd/carpd/config"
	"github.com/carpd/carpd/ctsync"
	"github.com/carpd/carpd/ctsync/kernel"
	"github.com/carpd/carpd/ctsync/wire"
)

// syncRunner is a running state-sync engine with its kernel handle.
type syncRunner struct {
	cfg     config.Sync
	engine  *ctsync.Engine
	kern    *kernel.Conntrack
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
	conn, err := listenSync(sc)
	if err != nil {
		return nil, err
	}
	f := sc.Filter
	// The VIPs: the only addresses of ours a flow of the peer may carry
	// (as its NAT address); kernel.Filter.CheckReceived.
	var vips []netip.Addr
	for _, v := range d.cfg.VHIDs {
		for _, p := range v.Addresses {
			vips = append(vips, p.Addr())
		}
	}
	// SkipOwnWrites: the events of the peer's flows we inject are not
	// ours to replicate (the engine would ignore them anyway); dropping
	// them at the socket spares a backup a second pass over every flow,
	// and the event overruns (and table re-dumps) of a bulk transfer.
	kc, err := kernel.Open(kernel.Config{Log: d.log, SkipOwnWrites: true, Filter: kernel.Filter{
		SyncPort: sc.Port, Protocols: f.Protocols, Include: f.Include, Exclude: f.Exclude,
		Zones: f.Zones, Mark: f.Mark, MarkMask: f.MarkMask, MinTCPState: f.MinTCPState, Assured: f.AssuredOnly,
		VIPs: vips,
	}})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	host, _ := os.Hostname()
	r := &syncRunner{cfg: sc, kern: kc, done: make(chan struct{}), started: time.Now()}
	r.engine, err = ctsync.New(ctsync.Config{
		Key: key, Name: host, Peer: netip.AddrPortFrom(dst, sc.Port),
		Window: sc.Window, Refresh: sc.Refresh, BulkTimeout: sc.BulkTimeout, Bandwidth: sc.Bandwidth,
		Log: d.log,
		// What we receive goes through the filter of what we send.
		Admit: kc.Admit, MaxTimeout: kc.MaxTimeout,
		OnSynced: func() {
			select {
			case d.syncedCh <- struct{}{}:
			default:
			}
		},
	}, kc, conn)
	if err != nil {
		kc.Close()
		conn.Close()
		return nil, err
	}
	return r, nil
}

// stopSyncNow stops the engine and waits for it (Run, at the end).
func (d *Daemon) stopSyncNow() {
	if d.sync == nil {
		return
	}
	d.sync.cancel()
	<-d.sync.done
	d.sync.kern.Close()
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
		r.kern.Close()
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
	if reflect.DeepEqual(old, d.cfg.Sync) && (d.sync != nil || d.syncStopping || !d.cfg.Sync.Enabled) {
		return
	}
	d.log.Info("state sync configuration changed; restarting the sync engine")
	d.stopSync()
	d.startSync()
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
