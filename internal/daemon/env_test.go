package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/carp/carptest"
	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/ctsync/ctsynctest"
)

// These tests run whole daemons as an ordinary user: their interfaces are
// ports of a carptest segment (fake sockets and addresses), their links a
// carptest.Links, netifd a carptest.Netifd, their vhosts on the segment's
// fake clock, all inside a testing/synctest bubble. Everything else (the
// loop, reloads, demotion, the state file, status, the vhosts and their
// state machines) is the real code.

// fakeListener is a control socket nobody connects to: the daemon's own
// methods are the requests. (A real socket's Accept would never let the
// synctest bubble be idle.)
type fakeListener struct {
	once   sync.Once
	closed chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) { <-l.closed; return nil, net.ErrClosed }
func (l *fakeListener) Close() error              { l.once.Do(func() { close(l.closed) }); return nil }
func (l *fakeListener) Addr() net.Addr            { return &net.UnixAddr{Name: "fake", Net: "unix"} }

// host is one router running the daemon with its interfaces on seg.
type host struct {
	t      *testing.T
	seg    *carptest.Segment
	node   *carptest.Node
	links  *carptest.Links
	netifd *carptest.Netifd
	d      *Daemon

	mu     sync.Mutex
	ports  map[string]*carptest.Port // the last port opened per device
	opened int                       // interfaces opened
	// unwired counts the interfaces and sync engines opened without the
	// daemon's one watcher of links and addresses (checked at stop).
	unwired int

	// syncLink, if set, is the sync link: the daemon's engines run on its
	// end 0, on syncKern (made by newHost), a fake conntrack table.
	syncLink *ctsynctest.Link
	syncKern *ctsynctest.Kernel
	syncEnd  int // the end of syncLink the engines use (0 unless set)

	// envHook, if set, changes the Env before the daemon starts.
	envHook func(*Env)

	// next is what Reload loads.
	next   *config.Config
	cancel context.CancelFunc
	done   chan error
}

// devices are the device names every host has; other names are networks.
var devices = []string{"dev0", "dev1"}

// newHost makes a host named name on seg, for cfg (its state file and
// control socket in a fresh directory). It does not start it.
func newHost(t *testing.T, seg *carptest.Segment, name string, cfg *config.Config) *host {
	h := &host{t: t, seg: seg, node: seg.Add(name, carp.Params{}), links: carptest.NewLinks(),
		netifd: carptest.NewNetifd(devices...), ports: map[string]*carptest.Port{}, syncKern: ctsynctest.NewKernel()}
	if cfg.Global.ControlSocket == config.DefaultControlSocket {
		cfg.Global.ControlSocket = t.TempDir() + "/carpd.sock"
	}
	cfg.Global.UbusSocket, cfg.Global.HotplugCall = "", ""
	h.next = cfg
	return h
}

func (h *host) env() Env {
	return Env{
		OpenIface: func(name string, addrs carp.IfaceAddrs, _ *slog.Logger) (Iface, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if addrs != carp.IfaceAddrs(h.links) {
				h.unwired++
			}
			p := h.seg.Plug(h.node)
			h.ports[name] = p
			h.opened++
			return p, nil
		},
		OpenAddresses: func(name string, _ *slog.Logger) (Addresses, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.ports[name], nil
		},
		LinkUp: h.links.Up,
		WatchLinks: func(context.Context, *slog.Logger) (LinkWatcher, error) {
			return h.links, nil
		},
		IsDevice:       h.netifd.IsDevice,
		ResolveNetwork: h.netifd.Resolve,
		ListenControl: func(string) (net.Listener, error) {
			return &fakeListener{closed: make(chan struct{})}, nil
		},
		Clock: h.seg.Clock,
		OpenSync: func(_ config.Sync, _ []netip.Addr, local func(netip.Addr) bool, _ *slog.Logger) (SyncParts, error) {
			if local == nil {
				h.mu.Lock()
				h.unwired++
				h.mu.Unlock()
			}
			if h.syncLink == nil {
				return SyncParts{}, errors.New("no sync link in this test")
			}
			return SyncParts{Kernel: h.syncKern, Conn: h.syncLink.Reopen(h.syncEnd)}, nil
		},
	}
}

// start runs the daemon for cfg until the test ends.
func (h *host) start(cfg *config.Config) {
	h.next = cfg
	env := h.env()
	if h.envHook != nil {
		h.envHook(&env)
	}
	h.d = New(cfg, Options{Env: env, Load: func() (*config.Config, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.next, nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx, nil) }()
	h.seg.Clock.Settle()
	h.t.Cleanup(h.stop)
}

// stop stops the daemon, advancing the segment's clock while its masters
// bow out, and waits for Run to return.
func (h *host) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	h.mu.Lock()
	if h.unwired != 0 {
		h.t.Errorf("%s: %d interfaces or sync engines opened without the link and address watcher", h.node.Name, h.unwired)
	}
	h.mu.Unlock()
	for range 100 {
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
			return
		default:
			h.seg.Run(100 * time.Millisecond)
		}
	}
	h.t.Errorf("%s: Run did not return after 10 s of fake time", h.node.Name)
}

// reload makes the daemon load cfg, advancing the clock while the vhosts
// it removed bow out.
func (h *host) reload(cfg *config.Config) {
	h.mu.Lock()
	h.next = cfg
	h.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- h.d.Reload() }()
	for range 100 {
		select {
		case err := <-errc:
			if err != nil {
				h.t.Fatalf("reload: %v", err)
			}
			return
		default:
			h.seg.Run(100 * time.Millisecond)
		}
	}
	h.t.Fatalf("reload did not return after 10 s of fake time")
}

func (h *host) status() Status {
	h.t.Helper()
	st, err := h.d.Status()
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	return st
}

// vhost returns the status of vhid on iface (the configured name).
func (h *host) vhost(iface string, vhid uint8) VHIDStatus {
	h.t.Helper()
	for _, v := range h.status().VHIDs {
		if (v.Interface == iface || v.Network == iface) && v.VHID == vhid {
			return v
		}
	}
	h.t.Fatalf("%s: no vhid %d on %s in status", h.node.Name, vhid, iface)
	return VHIDStatus{}
}

// running returns the vhost running for key ("dev0/1"), nil if none.
func (h *host) running(key string) *carp.VHost {
	var v *carp.VHost
	if err := h.d.do(func() {
		if ve := h.d.vhosts[key]; ve != nil {
			v = ve.v
		}
	}); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *host) port(dev string) *carptest.Port {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ports[dev]
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func vhid(iface string, id, skew uint8, password string, addrs ...string) config.VHID {
	v := config.VHID{Interface: iface, VHID: id, AdvBase: 1, AdvSkew: skew, Password: password}
	for _, a := range addrs {
		v.Addresses = append(v.Addresses, pfx(a))
	}
	return v
}

func cfgWith(base *config.Config, vs ...config.VHID) *config.Config {
	c := *base
	c.VHIDs = vs
	return &c
}
