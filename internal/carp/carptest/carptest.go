// Package carptest runs real carp.VHost instances on one in-memory
// multicast segment with a fake clock, so multi-router behaviour
// (elections, preemption, demotion, bow-out, loss, latency, replays) is
// tested deterministically, without root and without sockets. What runs is
// the daemon's code from the advert bytes up: the input checks, HMAC and
// counter, the state machine and the vhost's actions; only the sockets and
// the VIP calls are fakes (Port).
//
// A Segment must be used inside a testing/synctest bubble: after every
// step it waits (synctest.Wait) until the vhost goroutines are idle, so
// each fake-clock tick is handled completely before the next.
//
// Layout:
//
//	carptest.go  Segment, Node and Port (fake sockets and fake Announcer)
//	clock.go     Clock, a fake carp.Clock with Advance
package carptest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// Epoch is where a Segment's clock starts.
var Epoch = time.Unix(1_000_000, 0)

// IfaceName is the name of every node's interface on the segment.
const IfaceName = "seg0"

// Segment is a multicast LAN of simulated routers sharing one vhid.
type Segment struct {
	Clock *Clock
	Nodes []*Node
	// VHID, Password and VIP configure every node's vhost; set them before
	// the first Start.
	VHID     uint8
	Password string
	VIP      netip.Prefix
	// Delay is the one-way latency of an advert.
	Delay time.Duration
	// Drop, when set, decides whether one delivery from→to is lost.
	Drop func(from, to *Node, a carp.Advert) bool
	// Latency, when set, gives the one-way latency of one delivery instead
	// of Delay (jitter, reordering, asymmetric links).
	Latency func(from, to *Node, a carp.Advert) time.Duration

	t  testing.TB
	mu sync.Mutex // guards the nodes' fields written by vhost goroutines
	// vhosts are every incarnation started, for Close.
	vhosts []*carp.VHost
}

// Node is one simulated router.
type Node struct {
	Name   string
	Addr   netip.Addr
	Params carp.Params
	// V is the running vhost: a new one on every Start or Restart.
	V *carp.VHost
	// Up is false once crashed: the node sends and receives nothing.
	Up bool
	// Log records every transition as "t=… FROM->TO (reason)", t from
	// Epoch.
	Log []string
	// Sent counts adverts put on the segment, Announced the announcement
	// bursts.
	Sent, Announced int

	port   *Port
	cancel context.CancelFunc
}

// New returns an empty segment (vhid 1, a password, VIP 10.0.0.1/24, 1 ms
// latency). It must be called inside a synctest bubble; the vhosts are
// stopped when the test ends.
func New(t testing.TB) *Segment {
	s := &Segment{Clock: NewClock(Epoch), VHID: 1, Password: "carptest",
		VIP: netip.MustParsePrefix("10.0.0.1/24"), Delay: time.Millisecond, t: t}
	s.Clock.Settle = synctest.Wait
	t.Cleanup(s.Close)
	return s
}

// Now returns the segment's clock.
func (s *Segment) Now() time.Time { return s.Clock.Now() }

// Add creates a node, not started; its address is 10.0.0.2, .3, ...
func (s *Segment) Add(name string, p carp.Params) *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := &Node{Name: name, Params: p, Up: true,
		Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(len(s.Nodes) + 2)})}
	s.Nodes = append(s.Nodes, n)
	return n
}

// Start runs a new vhost on n, with a fresh port: the node comes up from
// INIT with nothing remembered, as after a reboot.
func (s *Segment) Start(n *Node) {
	cfg := carp.VHostConfig{Interface: IfaceName, VHID: s.VHID, Params: n.Params,
		Password: s.Password, Addresses: []netip.Prefix{s.VIP}}
	port := NewPort(s, n)
	v := carp.NewVHost(cfg, port, port, nil, func(t carp.Transition) { s.logTransition(n, t) },
		carp.WithClock(s.Clock))
	port.Attach(v, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	n.V, n.port, n.cancel, n.Up = v, port, cancel, true
	s.vhosts = append(s.vhosts, v)
	s.mu.Unlock()
	go v.Run(ctx)
	s.Clock.settle()
}

// Stop stops n's vhost gracefully: a master bows out and keeps its VIPs
// until it hears the new master or carp.BowOutLinger passes. n must have
// been started.
func (s *Segment) Stop(n *Node) {
	n.cancel()
	s.Clock.settle()
}

// Demote sets n's external demotion.
func (s *Segment) Demote(n *Node, d uint8) {
	n.V.SetDemote(d)
	s.Clock.settle()
}

// Crash stops n at once: no bow-out, its VIPs gone with it. n must have
// been started.
func (s *Segment) Crash(n *Node) {
	s.mu.Lock()
	n.Up = false
	n.port.dead = true
	clear(n.port.held)
	s.mu.Unlock()
	n.cancel()
	s.Clock.settle()
}

// Restart brings a crashed node back up, starting from INIT.
func (s *Segment) Restart(n *Node) { s.Start(n) }

// Run advances the clock by d, processing every due timer and delivery in
// order.
func (s *Segment) Run(d time.Duration) { s.Clock.Advance(d) }

// Inject delivers a raw advert from src to n now, as if an attacker (or a
// broken peer) had sent it.
func (s *Segment) Inject(n *Node, src netip.Addr, ttl int, payload []byte) {
	s.deliver(n, src, carp.Group4, ttl, payload)
	s.Clock.settle()
}

// Masters returns the nodes in MASTER.
func (s *Segment) Masters() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Up && n.V != nil && n.V.Status().State == carp.Master.String() {
			out = append(out, n)
		}
	}
	return out
}

// Holders returns the nodes that have the VIPs configured.
func (s *Segment) Holders() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Node
	for _, n := range s.Nodes {
		if n.port != nil && len(n.port.held) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// Close stops every vhost and advances the clock until they have returned
// (a master that bows out lingers on the fake clock).
func (s *Segment) Close() {
	for _, n := range s.Nodes {
		if n.cancel != nil {
			n.cancel()
		}
	}
	for range 100 {
		running := 0
		for _, v := range s.vhosts {
			select {
			case <-v.Done():
			default:
				running++
			}
		}
		if running == 0 {
			return
		}
		s.Clock.Advance(100 * time.Millisecond)
	}
	s.t.Errorf("carptest: vhosts still running after 10 s of fake time")
}

func (s *Segment) logTransition(n *Node, t carp.Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.Log = append(n.Log, fmt.Sprintf("t=%v %v->%v (%s)", t.At.Sub(Epoch), t.From, t.To, t.Reason))
}

// deliver hands one advert to the vhost of n's current port for its vhid.
func (s *Segment) deliver(n *Node, src, dst netip.Addr, ttl int, payload []byte) {
	s.mu.Lock()
	p := n.port
	if p == nil || p.dead || !n.Up {
		s.mu.Unlock()
		return
	}
	var v *carp.VHost
	switch {
	case len(payload) < 2:
		p.stats.Short++
	case p.vhosts[payload[1]] == nil:
		p.stats.UnknownVHID++
	default:
		v = p.vhosts[payload[1]]
	}
	s.mu.Unlock()
	if v != nil {
		v.Deliver(src, dst, ttl, payload)
	}
}

// Port is one router's interface on a Segment, in place of carp.Iface and
// vip.Linux: it implements carp.Sender (adverts go to every other node's
// port after the segment's latency, unless dropped) and carp.Announcer (it
// records which VIPs it holds), and passes received adverts to the vhost
// attached for their vhid. It has Iface's methods, so code written against
// an interface of them runs on a segment too.
type Port struct {
	seg    *Segment
	node   *Node
	dead   bool // crashed or closed: everything is ignored
	vhosts map[uint8]*carp.VHost
	held   map[netip.Prefix]bool
	stats  carp.IfaceStats
}

// NewPort returns n's port on s; the segment delivers to the port Start
// gave n last.
func NewPort(s *Segment, n *Node) *Port {
	return &Port{seg: s, node: n, vhosts: map[uint8]*carp.VHost{}, held: map[netip.Prefix]bool{}}
}

// Attach routes the adverts of cfg.VHID to v, like carp.Iface.Attach.
func (p *Port) Attach(v *carp.VHost, cfg carp.VHostConfig) {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	p.vhosts[cfg.VHID] = v
}

// Detach stops routing the adverts of vhid.
func (p *Port) Detach(vhid uint8) {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	delete(p.vhosts, vhid)
}

// Name returns IfaceName.
func (p *Port) Name() string { return IfaceName }

// Len returns the number of attached vhosts.
func (p *Port) Len() int {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	return len(p.vhosts)
}

// Stats returns the adverts dropped before reaching a vhost.
func (p *Port) Stats() carp.IfaceStats {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	return p.stats
}

// Close takes the port off the segment: it sends and receives nothing
// more. Like Iface.Close it removes no VIP.
func (p *Port) Close() error {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	p.dead = true
	return nil
}

// Send implements carp.Sender: the advert reaches every other node (dst a
// group) or the node with address dst.
func (p *Port) Send(payload []byte, dst netip.Addr) error {
	s := p.seg
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.dead {
		return nil
	}
	from := p.node
	from.Sent++
	var a carp.Advert
	_ = a.UnmarshalBinary(payload) // for the hooks only: receivers check it
	b := append([]byte(nil), payload...)
	for _, to := range s.Nodes {
		if to == from || (!dst.IsMulticast() && dst != to.Addr) {
			continue
		}
		if s.Drop != nil && s.Drop(from, to, a) {
			continue
		}
		d := s.Delay
		if s.Latency != nil {
			d = s.Latency(from, to, a)
		}
		s.Clock.AfterFunc(d, func() { s.deliver(to, from.Addr, dst, carp.TTL, b) })
	}
	return nil
}

// Source implements carp.Sender.
func (p *Port) Source(v6 bool) netip.Addr {
	if v6 {
		a := p.node.Addr.As4()
		return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 12: a[0], 13: a[1], 14: a[2], 15: a[3]})
	}
	return p.node.Addr
}

// IsLocal implements carp.Sender.
func (p *Port) IsLocal(a netip.Addr) bool { return a == p.Source(a.Is6()) }

// Add implements carp.Announcer.
func (p *Port) Add(_ context.Context, ps []netip.Prefix) error {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	if !p.dead {
		for _, x := range ps {
			p.held[x] = true
		}
	}
	return nil
}

// Remove implements carp.Announcer.
func (p *Port) Remove(_ context.Context, ps []netip.Prefix) error {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	for _, x := range ps {
		delete(p.held, x)
	}
	return nil
}

// Announce implements carp.Announcer.
func (p *Port) Announce(context.Context, []netip.Addr) error {
	p.seg.mu.Lock()
	defer p.seg.mu.Unlock()
	if !p.dead {
		p.node.Announced++
	}
	return nil
}
