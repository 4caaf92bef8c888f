package carp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, reflect.TypeOf(a).Name())
	}
	return out
}

func wantKinds(t *testing.T, acts []Action, want ...string) {
	t.Helper()
	if got := kinds(acts); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("actions %v, want %v", got, want)
	}
}

var peer = netip.MustParseAddr("10.0.0.9")

func TestStartBackupThenMasterAfterThreeIntervals(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1})
	wantKinds(t, m.Step(EvStart{}, t0), "Transition")
	if m.State != Backup || !m.NextDeadline().Equal(t0.Add(3*time.Second)) {
		t.Fatalf("state %v deadline %v", m.State, m.NextDeadline().Sub(t0))
	}
	// An early timer does nothing.
	wantKinds(t, m.Step(EvTimer{}, t0.Add(time.Second)))
	acts := m.Step(EvTimer{}, t0.Add(3*time.Second))
	wantKinds(t, acts, "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")
	if s := acts[2].(ActSend); s != (ActSend{AdvBase: 1}) {
		t.Errorf("takeover advert %+v", s)
	}
	// Adverts every interval; the announce burst repeats after 2 more.
	now := t0.Add(3 * time.Second)
	now = now.Add(time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "ActSend")
	now = now.Add(time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "ActSend", "ActAnnounce")
	now = now.Add(time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "ActSend")
}

func TestBackupRules(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		demote  uint8
		adv     EvAdvert
		master  bool
		comment string
	}{
		{"equal master resets timer", Params{AdvBase: 1, AdvSkew: 100}, 0, EvAdvert{AdvBase: 1, AdvSkew: 100}, false, ""},
		{"slower master, no preempt", Params{AdvBase: 1}, 0, EvAdvert{AdvBase: 1, AdvSkew: 100}, false, ""},
		{"slower master, preempt", Params{AdvBase: 1, Preempt: true}, 0, EvAdvert{AdvBase: 1, AdvSkew: 100}, true, ""},
		{"preempt but master less demoted", Params{AdvBase: 1, Preempt: true}, 5, EvAdvert{AdvBase: 1, AdvSkew: 100, Demote: 0}, false, ""},
		{"demoted master, no preempt", Params{AdvBase: 1, AdvSkew: 200}, 0, EvAdvert{AdvBase: 1, Demote: 1}, true, ""},
		{"bow-out", Params{AdvBase: 1, AdvSkew: 200}, 0, EvAdvert{AdvBase: 255, AdvSkew: 255}, true, ""},
		{"master slower than 3 advbase", Params{AdvBase: 1}, 0, EvAdvert{AdvBase: 4}, true, ""},
		{"advbase 0 skips the time-out shortcut", Params{AdvSkew: 26}, 0, EvAdvert{AdvBase: 200}, false, ""},
		{"advbase 0 still honours a bow-out", Params{AdvSkew: 26}, 0, EvAdvert{AdvBase: 255, AdvSkew: 255}, true, ""},
		{"preempt strictly better only", Params{AdvBase: 1, AdvSkew: 10, Preempt: true}, 0, EvAdvert{AdvBase: 1, AdvSkew: 10}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.p)
			m.Step(EvStart{}, t0)
			m.Step(EvDemote{Demote: tt.demote}, t0)
			tt.adv.Src = peer
			now := t0.Add(time.Second)
			acts := m.Step(tt.adv, now)
			if got := m.State == Master; got != tt.master {
				t.Fatalf("master = %v, want %v (actions %v)", got, tt.master, kinds(acts))
			}
			if !tt.master && !m.NextDeadline().Equal(now.Add(tt.p.MasterDown())) {
				t.Errorf("master-down timer not reset: %v", m.NextDeadline().Sub(now))
			}
		})
	}
}

func TestMasterRules(t *testing.T) {
	tests := []struct {
		name   string
		p      Params
		demote uint8
		adv    EvAdvert
		backup bool
	}{
		{"faster master wins", Params{AdvBase: 1, AdvSkew: 100}, 0, EvAdvert{AdvBase: 1}, true},
		{"equal timing yields", Params{AdvBase: 1}, 0, EvAdvert{AdvBase: 1}, true},
		{"slower peer ignored", Params{AdvBase: 1}, 0, EvAdvert{AdvBase: 1, AdvSkew: 1}, false},
		{"faster but more demoted ignored", Params{AdvBase: 1, AdvSkew: 100}, 0, EvAdvert{AdvBase: 1, Demote: 1}, false},
		{"slower but less demoted wins", Params{AdvBase: 1}, 2, EvAdvert{AdvBase: 2, Demote: 1}, true},
		{"bow-out of another master ignored", Params{AdvBase: 1}, 0, EvAdvert{AdvBase: 255, AdvSkew: 255}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(tt.p)
			m.Step(EvStart{}, t0)
			m.Step(EvDemote{Demote: tt.demote}, t0)
			m.Step(EvTimer{}, t0.Add(time.Hour))
			if m.State != Master {
				t.Fatal("not master")
			}
			tt.adv.Src = peer
			acts := m.Step(tt.adv, t0.Add(time.Hour+2*time.Second))
			if got := m.State == Backup; got != tt.backup {
				t.Fatalf("backup = %v, want %v", got, tt.backup)
			}
			if tt.backup {
				// The yield notice: one advert to the winner alone.
				wantKinds(t, acts, "Transition", "ActRemoveVIPs", "ActSend")
				if n := acts[2].(ActSend); n.To != peer {
					t.Fatalf("yield notice to %v, want %v", n.To, peer)
				}
			} else {
				// The master it outranks: advertise and announce at once.
				wantKinds(t, acts, "ActSend", "ActAnnounce")
				if n := acts[0].(ActSend); n.To.IsValid() {
					t.Fatalf("answer sent to %v only", n.To)
				}
			}
		})
	}
}

// TestMasterAnswersOutrankedMaster: a healed partition leaves two masters;
// the one that stays master advertises and announces as soon as it hears
// the other, at most once per interval however often the other
// advertises, and repeats the announcement two adverts later as after a
// takeover. Within an interval of its own takeover (it announced then) it
// does not announce again.
func TestMasterAnswersOutrankedMaster(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1})
	m.Step(EvStart{}, t0)
	now := t0.Add(3 * time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")
	worse := EvAdvert{AdvBase: 1, AdvSkew: 50, Src: peer}
	wantKinds(t, m.Step(worse, now.Add(500*time.Millisecond))) // just announced
	// Long after the takeover (the partition lasted a minute).
	for range 60 {
		now = now.Add(time.Second)
		m.Step(EvTimer{}, now)
	}
	heal := now.Add(300 * time.Millisecond)
	wantKinds(t, m.Step(worse, heal), "ActSend", "ActAnnounce")
	if m.State != Master || !m.NextDeadline().Equal(heal.Add(time.Second)) {
		t.Fatalf("state %v, next advert in %v", m.State, m.NextDeadline().Sub(heal))
	}
	// The other keeps advertising (several times an interval): no storm.
	wantKinds(t, m.Step(worse, heal.Add(100*time.Millisecond)))
	wantKinds(t, m.Step(worse, heal.Add(900*time.Millisecond)))
	// The burst repeats after AnnounceRepeatAdverts adverts.
	now = heal.Add(time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "ActSend")
	now = now.Add(time.Second)
	wantKinds(t, m.Step(EvTimer{}, now), "ActSend", "ActAnnounce")
	// An interval after the answer, a master heard again is answered again.
	wantKinds(t, m.Step(worse, now.Add(10*time.Millisecond)), "ActSend", "ActAnnounce")
}

func TestDemoteToSkew(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1, AdvSkew: 100, DemoteToSkew: true})
	m.Step(EvStart{}, t0)
	m.Step(EvTimer{}, t0.Add(time.Hour))
	acts := m.Step(EvDemote{Demote: 50}, t0.Add(time.Hour))
	wantKinds(t, acts, "ActSend")
	if s := acts[0].(ActSend); s != (ActSend{AdvBase: 1, AdvSkew: 150, Demote: 50}) {
		t.Errorf("demoted advert %+v", s)
	}
	acts = m.Step(EvDemote{Demote: 200}, t0.Add(time.Hour))
	if s := acts[0].(ActSend); s.AdvSkew != MaxFBSDSkew || s.Demote != 200 {
		t.Errorf("clamped advert %+v", s)
	}
	// Without the option the skew stays and only the demote byte moves.
	m = NewMachine(Params{AdvBase: 1, AdvSkew: 100})
	m.Step(EvStart{}, t0)
	m.Step(EvTimer{}, t0.Add(time.Hour))
	acts = m.Step(EvDemote{Demote: 50}, t0.Add(time.Hour))
	if s := acts[0].(ActSend); s != (ActSend{AdvBase: 1, AdvSkew: 100, Demote: 50}) {
		t.Errorf("advert %+v", s)
	}
	// Same demotion again: nothing to send.
	wantKinds(t, m.Step(EvDemote{Demote: 50}, t0.Add(time.Hour)))
}

func TestStop(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1})
	m.Step(EvStart{}, t0)
	m.Step(EvTimer{}, t0.Add(time.Hour))
	acts := m.Step(EvStop{}, t0.Add(time.Hour))
	wantKinds(t, acts, "Transition", "ActSend", "ActRemoveVIPsLater")
	if s := acts[1].(ActSend); s.AdvBase != 255 || s.AdvSkew != 255 {
		t.Errorf("bow-out %+v", s)
	}
	if m.State != Init || !m.NextDeadline().IsZero() {
		t.Errorf("after stop: %v %v", m.State, m.NextDeadline())
	}
	// Link down as master: no bow-out (it could not be sent), VIPs go now.
	m = NewMachine(Params{AdvBase: 1})
	m.Step(EvStart{}, t0)
	m.Step(EvTimer{}, t0.Add(time.Hour))
	wantKinds(t, m.Step(EvLinkDown{}, t0.Add(time.Hour)), "Transition", "ActRemoveVIPs")
	// From backup, stop has nothing to undo.
	m = NewMachine(Params{AdvBase: 1})
	m.Step(EvStart{}, t0)
	wantKinds(t, m.Step(EvStop{}, t0), "Transition")
}

func TestParamsHitless(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1})
	m.Step(EvStart{}, t0)
	m.Step(EvTimer{}, t0.Add(time.Hour))
	acts := m.Step(EvParams{Params: Params{AdvBase: 2, AdvSkew: 10}}, t0.Add(time.Hour))
	wantKinds(t, acts, "ActSend")
	if m.State != Master {
		t.Fatal("reload changed state")
	}
	if s := acts[0].(ActSend); s.AdvBase != 2 || s.AdvSkew != 10 {
		t.Errorf("advert after reload %+v", s)
	}
}

func TestIntervals(t *testing.T) {
	if got := (Params{AdvSkew: 26}).Interval(); got != 101562500*time.Nanosecond {
		t.Errorf("advbase 0 advskew 26: %v", got)
	}
	if got := (Params{}).Interval(); got != time.Second/256 {
		t.Errorf("0/0: %v", got)
	}
	if got := (Params{AdvBase: 1, AdvSkew: 100}).MasterDown(); got != 3*(time.Second+100*time.Second/256) {
		t.Errorf("master down: %v", got)
	}
	if s := State(7).String(); s != "State(7)" {
		t.Error(s)
	}
}

func TestTieBreak(t *testing.T) {
	for _, tt := range []struct {
		self, src string
		yield     bool
	}{
		{"10.0.0.2", "10.0.0.3", false},
		{"10.0.0.3", "10.0.0.2", true},
		{"10.0.1.1", "10.0.0.255", true}, // numeric, not last-octet-first
		{"", "10.0.0.2", true},           // unknown own address: BSD behaviour
	} {
		m := NewMachine(Params{AdvBase: 1})
		if tt.self != "" {
			m.Self = netip.MustParseAddr(tt.self)
		}
		m.Step(EvStart{}, t0)
		m.Step(EvTimer{}, t0.Add(time.Hour))
		m.Step(EvAdvert{AdvBase: 1, Src: netip.MustParseAddr(tt.src)}, t0.Add(time.Hour))
		if got := m.State == Backup; got != tt.yield {
			t.Errorf("self %s, peer %s: yield=%v want %v", tt.self, tt.src, got, tt.yield)
		}
	}
}

// confirmBackup returns a BACKUP that confirms takeovers on demotion for
// bound.
func confirmBackup(bound time.Duration) *Machine {
	m := NewMachine(Params{AdvBase: 1, AdvSkew: 100})
	m.Confirm = bound
	m.Step(EvStart{}, t0)
	return m
}

func TestConfirmReleasedTakesOver(t *testing.T) {
	m := confirmBackup(4 * time.Second)
	demoted := EvAdvert{AdvBase: 1, Demote: 1, Src: peer}
	acts := m.Step(demoted, t0.Add(time.Second))
	wantKinds(t, acts, "ActConfirm")
	if c := acts[0].(ActConfirm); c != (ActConfirm{Master: peer, Demote: 0, Theirs: 1}) {
		t.Errorf("confirm %+v", c)
	}
	if m.State != Backup || m.Held(t0.Add(time.Second)) == "" {
		t.Fatalf("state %v held %q; want a held BACKUP", m.State, m.Held(t0.Add(time.Second)))
	}
	// The master keeps advertising: no second question, still BACKUP,
	// and the master-down timer restarts as usual.
	wantKinds(t, m.Step(demoted, t0.Add(2*time.Second)))
	if want := t0.Add(2 * time.Second).Add(m.Params.MasterDown()); !m.NextDeadline().Equal(want) {
		t.Errorf("master-down deadline %v after the advert at 2 s, want %v", m.NextDeadline().Sub(t0), want.Sub(t0))
	}
	// The runner confirms: take over at once.
	wantKinds(t, m.Step(EvHold{}, t0.Add(2100*time.Millisecond)), "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")
	if m.State != Master {
		t.Fatalf("state %v after the release, want MASTER", m.State)
	}
}

func TestConfirmSharedFailureNoMove(t *testing.T) {
	m := confirmBackup(4 * time.Second)
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(time.Second)), "ActConfirm")
	m.Step(EvHold{Until: t0.Add(5 * time.Second), Reason: "own tracker wan_ping suspect"}, t0.Add(1100*time.Millisecond))
	if h := m.Held(t0.Add(1200 * time.Millisecond)); h != "own tracker wan_ping suspect" {
		t.Errorf("held %q", h)
	}
	// Our tracker goes down: equal demotion, no move, ever.
	wantKinds(t, m.Step(EvDemote{Demote: 1}, t0.Add(1500*time.Millisecond)))
	for i := 2; i < 10; i++ {
		wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(time.Duration(i)*time.Second)))
	}
	// A late release of that confirmation moves nothing either.
	wantKinds(t, m.Step(EvHold{}, t0.Add(10*time.Second)))
	if m.State != Backup {
		t.Fatalf("state %v, want BACKUP", m.State)
	}
}

func TestConfirmBound(t *testing.T) {
	m := confirmBackup(3 * time.Second)
	demoted := EvAdvert{AdvBase: 1, Demote: 1, Src: peer}
	wantKinds(t, m.Step(demoted, t0.Add(time.Second)), "ActConfirm")
	// No answer: held until the bound, then the demotion decides.
	wantKinds(t, m.Step(demoted, t0.Add(2*time.Second)))
	wantKinds(t, m.Step(demoted, t0.Add(3*time.Second)))
	wantKinds(t, m.Step(demoted, t0.Add(4*time.Second)), "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")
}

func TestConfirmMasterDies(t *testing.T) {
	m := confirmBackup(10 * time.Second)
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(time.Second)), "ActConfirm")
	// The master falls silent: master-down, hold or not.
	wantKinds(t, m.Step(EvTimer{}, t0.Add(time.Second).Add(m.Params.MasterDown())), "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")
}

func TestHoldAfterRecovery(t *testing.T) {
	m := NewMachine(Params{AdvBase: 1, AdvSkew: 100})
	m.Step(EvStart{}, t0)
	// No Confirm: OpenBSD, at once.
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(time.Second)), "Transition", "ActAddVIPs", "ActSend", "ActAnnounce")

	m = confirmBackup(time.Second)
	m.Step(EvDemote{Demote: 1}, t0)
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(time.Second)))
	// Our tracker recovered: held while the master's recovers too.
	m.Step(EvHold{Until: t0.Add(5 * time.Second), Reason: "own tracker wan_ping recovered"}, t0.Add(1500*time.Millisecond))
	m.Step(EvDemote{Demote: 0}, t0.Add(1500*time.Millisecond))
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(2*time.Second)))
	if h := m.Held(t0.Add(2 * time.Second)); h != "own tracker wan_ping recovered" {
		t.Errorf("held %q", h)
	}
	// The master recovered in time: nothing to do.
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 0, Src: peer}, t0.Add(3*time.Second)))
	// Had it not, after the hold the usual confirmation.
	wantKinds(t, m.Step(EvAdvert{AdvBase: 1, Demote: 1, Src: peer}, t0.Add(6*time.Second)), "ActConfirm")
}
