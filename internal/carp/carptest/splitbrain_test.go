package carptest

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/carp"
)

// announced reads n.Announced (written by n's vhost goroutine).
func (s *Segment) announced(n *Node) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return n.Announced
}

// TestHealedSplitBrainAnnouncesAtOnce: a partition leaves a and b both
// master; when it heals, b yields and a, which stays master, announces
// its VIPs (gratuitous ARP / unsolicited NA) within one advert interval,
// whichever advert crosses first: b's (a answers the master it outranks)
// or a's (b yields silently to the LAN, and its yield notice to a makes a
// answer). Before, a sent only its periodic adverts, and the neighbours on
// b's side kept sending to b.
func TestHealedSplitBrainAnnouncesAtOnce(t *testing.T) {
	for _, first := range []string{"loser's advert", "survivor's advert"} {
		t.Run(first, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := New(t)
				a := s.Add("a", carp.Params{AdvBase: 1})
				b := s.Add("b", carp.Params{AdvBase: 1, AdvSkew: 50})
				partitioned := true
				var healed time.Time
				s.Drop = func(from, to *Node, _ carp.Advert) bool {
					if partitioned {
						return true
					}
					// The first interval after the heal, one direction
					// still loses b's (or a's) multicast adverts, so that
					// the other crosses first.
					if s.Now().Sub(healed) < 1500*time.Millisecond {
						if first == "loser's advert" {
							return from == a
						}
						return from == b && b.V.Status().State == carp.Master.String()
					}
					return false
				}
				s.Start(a)
				s.Start(b)
				s.Run(30 * time.Second)
				if len(s.Masters()) != 2 {
					t.Fatal("partitioned nodes should both be master")
				}
				before := s.announced(a)
				partitioned, healed = false, s.Now()
				var at time.Duration = -1
				for s.Now().Sub(healed) < 3*time.Second {
					s.Run(10 * time.Millisecond)
					if at < 0 && s.announced(a) > before {
						at = s.Now().Sub(healed)
					}
				}
				one(t, s, a)
				limit := b.Params.Interval() + 2*s.Delay + 10*time.Millisecond
				if at < 0 || at > limit {
					t.Fatalf("a announced %v after the heal, want within %v\na %v\nb %v", at, limit, a.Log, b.Log)
				}
				t.Logf("a announced %v after the heal", at)
			})
		})
	}
}
