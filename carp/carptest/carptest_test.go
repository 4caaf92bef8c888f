package carptest

import (
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/carp"
)

func one(t *testing.T, s *Segment, want *Node) {
	t.Helper()
	m := s.Masters()
	if len(m) != 1 || m[0] != want {
		var names []string
		for _, n := range m {
			names = append(names, n.Name)
		}
		t.Fatalf("masters %v, want [%s]", names, want.Name)
	}
	h := s.Holders()
	if len(h) != 1 || h[0] != want {
		t.Fatalf("%d VIP holders, want only %s", len(h), want.Name)
	}
}

func TestElectionPreemptAndCrash(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1, Preempt: true})
	b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 100, Preempt: true})
	s.Step(b, carp.EvStart{})
	s.Run(5 * time.Second)
	one(t, s, b) // b alone becomes master
	s.Step(a, carp.EvStart{})
	s.Run(5 * time.Second)
	one(t, s, a) // a preempts: it advertises more often
	s.Crash(a)
	s.Run(5 * time.Second)
	one(t, s, b)
	s.Restart(a)
	s.Run(5 * time.Second)
	one(t, s, a)
	if len(b.Log) == 0 || len(a.Log) == 0 {
		t.Fatal("no transitions logged")
	}
}

func TestCrashFailoverTime(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1})
	b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 100})
	s.Step(a, carp.EvStart{})
	s.Run(4 * time.Second)
	s.Step(b, carp.EvStart{})
	s.Run(10 * time.Second)
	one(t, s, a)
	crash := s.Now
	s.Crash(a)
	for i := 0; i < 10000 && len(s.Masters()) == 0; i++ {
		s.Run(time.Millisecond)
	}
	took := s.Now.Sub(crash)
	// b's master-down is 3*(1+100/256) s after the last advert it heard.
	if max := 3 * (time.Second + 100*time.Second/256); took > max+2*time.Millisecond {
		t.Fatalf("failover took %v, more than %v", took, max)
	}
	one(t, s, b)
}

func TestBowOutHandsOverAtOnce(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1})
	b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 100})
	s.Step(a, carp.EvStart{})
	s.Step(b, carp.EvStart{})
	s.Run(10 * time.Second)
	one(t, s, a)
	s.Step(a, carp.EvStop{})
	s.Run(10 * time.Millisecond)
	if m := s.Masters(); len(m) != 1 || m[0] != b {
		t.Fatalf("bow-out did not hand over within 10 ms")
	}
	// Both hold the VIPs during the linger, then only b.
	if len(s.Holders()) != 2 {
		t.Fatalf("holders during linger: %d", len(s.Holders()))
	}
	s.Run(carp.BowOutLinger)
	one(t, s, b)
}

func TestThreeRoutersDemotion(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1})
	b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 50})
	c := s.Add("c", carp.Params{AdvBase: 1, AdvSkew: 100})
	s.Step(c, carp.EvStart{})
	s.Run(5 * time.Second)
	for _, n := range []*Node{b, a} {
		s.Step(n, carp.EvStart{})
		s.Run(500 * time.Millisecond)
	}
	s.Run(10 * time.Second)
	// No preempt: whoever won first stays. c started first.
	one(t, s, c)
	// Demote c: OpenBSD semantics hand over even without preempt.
	s.Step(c, carp.EvDemote{Demote: 1})
	s.Run(5 * time.Second)
	if m := s.Masters(); len(m) != 1 || m[0] == c {
		t.Fatalf("demoted master kept the VIP")
	}
	s.Run(30 * time.Second)
	if len(s.Masters()) != 1 || len(s.Holders()) != 1 {
		t.Fatal("not converged to a single master")
	}
}

func TestEqualTimingConverges(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1})
	b := s.Add("b", carp.Params{AdvBase: 1})
	// Partition: both become master.
	s.Drop = func(from, to *Node, _ carp.ActSend) bool { return true }
	s.Step(a, carp.EvStart{})
	s.Step(b, carp.EvStart{})
	s.Run(5 * time.Second)
	if len(s.Masters()) != 2 {
		t.Fatal("partitioned nodes should both be master")
	}
	// Heal: the lower address stays master at once.
	s.Drop = nil
	s.Run(20 * time.Second)
	one(t, s, a)
	if len(a.Log) != 2 || len(b.Log) != 3 {
		t.Fatalf("flapped while healing:\na %v\nb %v", a.Log, b.Log)
	}
}

func TestLossTolerance(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvBase: 1})
	b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 100})
	s.Step(a, carp.EvStart{})
	s.Run(4 * time.Second)
	s.Step(b, carp.EvStart{})
	// Lose every other advert: 3 intervals of master-down tolerate it.
	k := 0
	s.Drop = func(from, to *Node, _ carp.ActSend) bool { k++; return k%2 == 0 }
	s.Run(60 * time.Second)
	one(t, s, a)
	if len(b.Log) != 1 {
		t.Fatalf("backup flapped under 50%% loss: %v", b.Log)
	}
}

// TestBowOutSubSecond: a sub-second backup takes over on the bow-out at
// once, not after its master-down time (found by make bench-failover).
func TestBowOutSubSecond(t *testing.T) {
	s := New()
	a := s.Add("a", carp.Params{AdvSkew: 26})
	b := s.Add("b", carp.Params{AdvSkew: 30})
	s.Step(a, carp.EvStart{})
	s.Run(time.Second)
	s.Step(b, carp.EvStart{})
	s.Run(time.Second)
	one(t, s, a)
	s.Step(a, carp.EvStop{})
	s.Run(5 * time.Millisecond)
	if m := s.Masters(); len(m) != 1 || m[0] != b {
		t.Fatal("sub-second backup did not take over on the bow-out")
	}
	if r := b.Log[len(b.Log)-1]; !strings.Contains(r, "bowed out") {
		t.Fatalf("reason %q", r)
	}
}
