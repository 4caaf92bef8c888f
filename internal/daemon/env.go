package daemon

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync"
	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/track"
	"github.com/carpd/carpd/internal/vip"
)

// Env is the daemon's way to the system: the sockets, netlink handles and
// lookups it would otherwise open itself. Each is a small interface owned
// here, shaped like what the daemon does with it (house rule 2), so tests
// run the daemon as an ordinary user on fakes (internal/carp/carptest). A nil field
// is the real thing.
type Env struct {
	// OpenIface opens CARP's sockets on a device (carp.OpenIface); addrs
	// is the watcher's address table, nil when there is no watcher.
	OpenIface func(name string, addrs carp.IfaceAddrs, log *logx.Logger) (Iface, error)
	// OpenAddresses opens the address manager of a device: the VIPs and
	// their announcements (vip.New).
	OpenAddresses func(name string, log *logx.Logger) (Addresses, error)
	// LinkUp reports a device's link state when it is opened (vip.LinkUp).
	LinkUp func(name string) (bool, error)
	// WatchLinks starts the daemon's one watcher of links and addresses
	// (vip.Watch): link changes from then on, and every interface's
	// current addresses for the CARP sockets and the sync filter.
	WatchLinks func(ctx context.Context, log *logx.Logger) (LinkWatcher, error)
	// IsDevice reports whether an interface option names a device of the
	// host (net.InterfaceByName); other names are OpenWrt networks.
	IsDevice func(name string) bool
	// ResolveNetwork asks netifd for the device of an OpenWrt network
	// (openwrt.ResolveInterface); network is false when name turned out
	// to be a device. Nil: over ubus when ubus_socket is set, and no
	// network resolves without it.
	ResolveNetwork func(ctx context.Context, name string) (dev string, network bool, err error)
	// ListenControl listens on the control socket's path.
	ListenControl func(path string) (net.Listener, error)
	// Clock is the vhosts' clock (carp.WithClock) and the daemon's (the
	// since and expiry of demotion sources); nil is the real one.
	Clock carp.Clock
	// OpenSync opens what the state-sync engine runs on for sc: the
	// conntrack table, filtered as sc says (vips: the only addresses of
	// ours a peer's flow may carry; local: whether an address is the
	// router's, from the watcher, nil when there is none), and the socket
	// of the sync link (kernel.Open and listenSync). The daemon runs the
	// real ctsync.Engine on them.
	OpenSync func(sc config.Sync, vips []netip.Addr, local func(netip.Addr) bool, log *logx.Logger) (SyncParts, error)
	// StartTracker starts a tracker (track.Start); report gets its
	// changes and must not block.
	StartTracker func(ctx context.Context, cfg config.Track, env track.Env, report func(track.Report)) Tracker
	// RunService runs one action of a `config service` section, bounded
	// by ctx, and returns the backend that ran it. Nil: the real backends
	// (rpcd's rc over ubus, the init script, systemctl; services.go).
	RunService func(ctx context.Context, svc config.Service, action string) (backend string, err error)
}

// SyncParts is what a sync engine runs on.
type SyncParts struct {
	Kernel ctsync.Kernel
	// Conn is the sync link's socket; the engine closes it when it stops.
	Conn net.PacketConn
	// Admit and MaxTimeout are the table's own filter and timeouts
	// (ctsync.Config); nil: none.
	Admit      func(*flow.Flow) flow.Refusal
	MaxTimeout func(*flow.Flow) uint32
	// Close releases Kernel once the engine stopped; nil: nothing to do.
	Close func() error
}

// Iface is a device's CARP sockets: carp.Sender for the vhosts, and the
// daemon's four: route a vhid's adverts to its vhost, stop routing them,
// the drops before any vhost, close. *carp.Iface is one.
type Iface interface {
	carp.Sender
	Attach(v *carp.VHost, cfg carp.VHostConfig)
	Detach(vhid uint8)
	Stats() carp.IfaceStats
	Close() error
}

// Addresses is a device's address manager: carp.Announcer for the vhosts,
// and Close. *vip.Linux is one.
type Addresses interface {
	carp.Announcer
	Close() error
}

// LinkWatcher reports link changes until closed, and knows every
// interface's current addresses. *vip.Watcher is one.
type LinkWatcher interface {
	Events() <-chan vip.LinkEvent
	// Addrs returns a device's addresses, the primary first (carp.IfaceAddrs).
	Addrs(ifname string) []netip.Addr
	// IsLocal reports whether an address is the router's.
	IsLocal(a netip.Addr) bool
	Close() error
}

// withDefaults fills the nil fields with the real implementations (but
// ResolveNetwork, which needs the ubus client Run makes).
func (e Env) withDefaults() Env {
	if e.OpenIface == nil {
		e.OpenIface = func(name string, addrs carp.IfaceAddrs, log *logx.Logger) (Iface, error) {
			i, err := carp.OpenIface(name, addrs, log)
			if err != nil {
				return nil, err // not a nil *carp.Iface in an interface
			}
			return i, nil
		}
	}
	if e.OpenAddresses == nil {
		e.OpenAddresses = func(name string, log *logx.Logger) (Addresses, error) {
			a, err := vip.New(name, log)
			if err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	if e.LinkUp == nil {
		e.LinkUp = vip.LinkUp
	}
	if e.WatchLinks == nil {
		e.WatchLinks = func(ctx context.Context, log *logx.Logger) (LinkWatcher, error) {
			w, err := vip.Watch(ctx, log)
			if err != nil {
				return nil, err
			}
			return w, nil
		}
	}
	if e.IsDevice == nil {
		e.IsDevice = func(name string) bool { _, err := net.InterfaceByName(name); return err == nil }
	}
	if e.ListenControl == nil {
		e.ListenControl = func(path string) (net.Listener, error) {
			l, err := listenControl(path)
			if err != nil {
				return nil, err
			}
			return l, nil
		}
	}
	if e.OpenSync == nil {
		e.OpenSync = openSyncParts
	}
	if e.Clock == nil {
		e.Clock = realClock{}
	}
	if e.StartTracker == nil {
		e.StartTracker = startTrackerReal
	}
	return e
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time                      { return time.Now() }
func (realClock) NewTimer(d time.Duration) carp.Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
