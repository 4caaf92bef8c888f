package carptest

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/carpd/carpd/internal/vip"
)

// This file has the fakes for running the daemon as an ordinary user: a
// node's port without a vhost of the segment's own (the daemon makes its
// vhosts), a link watcher a test flips, and a netifd whose networks move.

// Plug gives n a fresh port and makes it the one the segment delivers to,
// without starting a vhost: whoever attaches vhosts to the port (the
// daemon) runs them. The port is n's interface until the next Plug or
// Start.
func (s *Segment) Plug(n *Node) *Port {
	p := NewPort(s, n)
	s.mu.Lock()
	n.port, n.Up = p, true
	s.mu.Unlock()
	return p
}

// Held returns the VIPs the port holds, sorted.
func (p *Port) Held() []netip.Prefix {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	out := make([]netip.Prefix, 0, len(p.held))
	for x := range p.held {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Links is a fake link watcher: every link is up until Set says otherwise.
// Its Up has the shape of vip.LinkUp, the rest that of *vip.Watcher.
type Links struct {
	mu     sync.Mutex
	down   map[string]bool
	events chan vip.LinkEvent
}

// NewLinks returns a watcher with every link up.
func NewLinks() *Links {
	return &Links{down: map[string]bool{}, events: make(chan vip.LinkEvent, 64)}
}

// Set changes a link's state and reports it to the watcher (it blocks
// when 64 events are unread).
func (l *Links) Set(name string, up bool) {
	l.mu.Lock()
	l.down[name] = !up
	l.mu.Unlock()
	l.events <- vip.LinkEvent{Name: name, Up: up}
}

// Up reports a link's state, like vip.LinkUp.
func (l *Links) Up(name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down[name], nil
}

// Addrs returns nil: the fake ports know their own addresses.
func (l *Links) Addrs(string) []netip.Addr { return nil }

// IsLocal returns false: no address is the host's.
func (l *Links) IsLocal(netip.Addr) bool { return false }

// Events returns the link changes Set made.
func (l *Links) Events() <-chan vip.LinkEvent { return l.events }

// Close does nothing: the channel stays, for the next watcher.
func (l *Links) Close() error { return nil }

// Netifd is a fake of the host's devices and of OpenWrt's netifd: which
// names are devices, and which device each network is on.
type Netifd struct {
	mu   sync.Mutex
	devs map[string]bool
	nets map[string]string
	// Calls counts the networks resolved.
	Calls int
}

// NewNetifd returns a host with the given devices and no networks.
func NewNetifd(devices ...string) *Netifd {
	n := &Netifd{devs: map[string]bool{}, nets: map[string]string{}}
	for _, d := range devices {
		n.devs[d] = true
	}
	return n
}

// SetNetwork puts network name on device dev ("" removes it).
func (n *Netifd) SetNetwork(name, dev string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if dev == "" {
		delete(n.nets, name)
		return
	}
	n.nets[name] = dev
}

// IsDevice reports whether name is one of the host's devices.
func (n *Netifd) IsDevice(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.devs[name]
}

// Resolve returns the device of a network, in the shape of
// openwrt.ResolveInterface.
func (n *Netifd) Resolve(_ context.Context, name string) (string, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Calls++
	if n.devs[name] {
		return name, false, nil
	}
	if dev, ok := n.nets[name]; ok {
		return dev, true, nil
	}
	return "", false, fmt.Errorf("%q: no such device or network", name)
}
