// Package carptest simulates CARP virtual hosts on one in-memory multicast
// segment with a fake clock, so multi-router behaviour (elections,
// preemption, demotion, bow-out, loss) is tested deterministically and
// without sockets. It drives the pure carp.Machine exactly as the runner
// does: events in, actions out.
package carptest

import (
	"container/heap"
	"fmt"
	"net/netip"
	"time"

	"github.com/carpd/carpd/carp"
)

// Node is one simulated router.
type Node struct {
	Name    string
	M       *carp.Machine
	Addr    netip.Addr
	Up      bool // false: crashed or link down; sends and receives nothing
	HasVIPs bool // VIPs configured (after ActAddVIPs, until removed)
	// Log records every transition as "t=… FROM->TO (reason)".
	Log []string
	// Sent counts adverts sent.
	Sent int
}

// Segment is a multicast LAN with a fake clock.
type Segment struct {
	Now   time.Time
	Nodes []*Node
	// Delay is the one-way latency of an advert.
	Delay time.Duration
	// Drop, when set, decides whether one delivery from→to is lost.
	Drop func(from, to *Node, a carp.ActSend) bool

	q      evq
	seq    int
	linger map[*Node]time.Time
}

// New returns an empty segment whose clock starts at an arbitrary instant.
func New() *Segment {
	return &Segment{Now: time.Unix(1_000_000, 0), Delay: time.Millisecond, linger: map[*Node]time.Time{}}
}

// Add creates a node in INIT.
func (s *Segment) Add(name string, p carp.Params) *Node {
	n := &Node{Name: name, M: carp.NewMachine(p), Up: true,
		Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(len(s.Nodes) + 2)})}
	n.M.Self = n.Addr
	s.Nodes = append(s.Nodes, n)
	return n
}

// Step delivers ev to n now and carries out the actions.
func (s *Segment) Step(n *Node, ev carp.Event) {
	for _, a := range n.M.Step(ev, s.Now) {
		s.act(n, a)
	}
	s.schedule(n)
}

// Crash stops n at once: no bow-out, VIPs gone with it.
func (s *Segment) Crash(n *Node) {
	n.Up = false
	n.HasVIPs = false
	n.M = carp.NewMachine(n.M.Params)
	n.M.Self = n.Addr
}

// Restart brings a crashed node back up, starting from INIT.
func (s *Segment) Restart(n *Node) {
	n.Up = true
	s.Step(n, carp.EvStart{})
}

// Masters returns the nodes in MASTER.
func (s *Segment) Masters() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.Up && n.M.State == carp.Master {
			out = append(out, n)
		}
	}
	return out
}

// Holders returns the nodes that have the VIPs configured.
func (s *Segment) Holders() []*Node {
	var out []*Node
	for _, n := range s.Nodes {
		if n.HasVIPs {
			out = append(out, n)
		}
	}
	return out
}

// Run advances the clock by d, processing every due event in order. It is
// bounded: at most one million events.
func (s *Segment) Run(d time.Duration) {
	end := s.Now.Add(d)
	for i := 0; i < 1_000_000 && s.q.Len() > 0; i++ {
		e := s.q[0]
		if e.at.After(end) {
			break
		}
		heap.Pop(&s.q)
		s.Now = e.at
		e.fn()
	}
	s.Now = end
}

func (s *Segment) act(n *Node, a carp.Action) {
	switch a := a.(type) {
	case carp.ActTransition:
		n.Log = append(n.Log, fmt.Sprintf("t=%v %v->%v (%s)", s.Now.Sub(time.Unix(1_000_000, 0)), a.From, a.To, a.Reason))
	case carp.ActAddVIPs:
		n.HasVIPs = true
		delete(s.linger, n)
	case carp.ActRemoveVIPs:
		n.HasVIPs = false
	case carp.ActRemoveVIPsLater:
		// The simulator models the upper bound: no peer is listened to.
		at := s.Now.Add(carp.BowOutLinger)
		s.linger[n] = at
		s.push(at, func() {
			if s.linger[n] == at {
				n.HasVIPs = false
			}
		})
	case carp.ActSend:
		if !n.Up {
			return
		}
		n.Sent++
		for _, peer := range s.Nodes {
			if peer == n || (s.Drop != nil && s.Drop(n, peer, a)) {
				continue
			}
			ev := carp.EvAdvert{AdvBase: a.AdvBase, AdvSkew: a.AdvSkew, Demote: a.Demote, Src: n.Addr}
			s.push(s.Now.Add(s.Delay), func() {
				if peer.Up {
					s.Step(peer, ev)
				}
			})
		}
	}
}

// schedule arms n's timer at its machine's deadline. Stale timers are
// harmless: the machine ignores an EvTimer before its deadline.
func (s *Segment) schedule(n *Node) {
	d := n.M.NextDeadline()
	if d.IsZero() {
		return
	}
	m := n.M
	s.push(d, func() {
		if n.Up && n.M == m && !s.Now.Before(m.NextDeadline()) && !m.NextDeadline().IsZero() {
			s.Step(n, carp.EvTimer{})
		}
	})
}

func (s *Segment) push(at time.Time, fn func()) {
	s.seq++
	heap.Push(&s.q, &event{at: at, seq: s.seq, fn: fn})
}

type event struct {
	at  time.Time
	seq int
	fn  func()
}

type evq []*event

func (q evq) Len() int { return len(q) }
func (q evq) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q evq) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *evq) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *evq) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
