package carp

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeNet records what a vhost sends and does; it stands in for the raw
// sockets and rtnetlink in unit tests of the runner (the real ones are
// exercised by the namespace tests in e2e/).
type fakeNet struct {
	mu       sync.Mutex
	sent     []Advert
	added    int
	removed  int
	announce int
	self     netip.Addr
	fail     bool
}

func (f *fakeNet) Send(payload []byte, dst netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return context.DeadlineExceeded
	}
	var a Advert
	if err := a.UnmarshalBinary(payload); err != nil {
		panic(err)
	}
	f.sent = append(f.sent, a)
	return nil
}
func (f *fakeNet) Source(v6 bool) netip.Addr { return f.self }
func (f *fakeNet) IsLocal(a netip.Addr) bool { return a == f.self }
func (f *fakeNet) Add(context.Context, []netip.Prefix) error {
	f.mu.Lock()
	f.added++
	f.mu.Unlock()
	return nil
}
func (f *fakeNet) Remove(context.Context, []netip.Prefix) error {
	f.mu.Lock()
	f.removed++
	f.mu.Unlock()
	return nil
}
func (f *fakeNet) Announce(context.Context, []netip.Addr) error {
	f.mu.Lock()
	f.announce++
	f.mu.Unlock()
	return nil
}

func (f *fakeNet) sends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

var testCfg = VHostConfig{Interface: "eth0", VHID: 7, Password: "secret",
	Params:    Params{AdvBase: 1, AdvSkew: 100},
	Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}

func startVHost(t *testing.T, cfg VHostConfig, onTransition ...func(Transition)) (*VHost, *fakeNet, func()) {
	t.Helper()
	f := &fakeNet{self: netip.MustParseAddr("10.0.0.2")}
	var cb func(Transition)
	if len(onTransition) > 0 {
		cb = onTransition[0]
	}
	v := NewVHost(cfg, f, f, nil, cb)
	ctx, cancel := context.WithCancel(context.Background())
	go v.Run(ctx)
	stop := func() {
		cancel()
		select {
		case <-v.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("vhost did not stop")
		}
	}
	t.Cleanup(stop)
	return v, f, stop
}

// advert builds a valid advert of a peer master for testCfg.
func advert(t *testing.T, mut func(*Advert)) []byte {
	a := Advert{Version: 2, Type: 1, VHID: 7, AuthLen: 7, AdvBase: 1, Counter: 42}
	a.HMAC = NewAuth("secret", 7, []netip.Addr{netip.MustParseAddr("10.0.0.1")}).Sum(42)
	if mut != nil {
		mut(&a)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitCounters(t *testing.T, v *VHost, cond func(Counters) bool) Status {
	t.Helper()
	for i := 0; i < 200; i++ {
		if s := v.Status(); cond(s.Counters) {
			return s
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("counters never matched: %+v", v.Status().Counters)
	return Status{}
}

// TestBadInputCountedAndDropped: every kind of bad advert is counted under
// its own reason and changes nothing, while a good one still works.
func TestBadInputCountedAndDropped(t *testing.T) {
	v, f, _ := startVHost(t, testCfg)
	// The drops are counted on delivery, before the vhost runs: wait for
	// INIT->BACKUP so the state check below sees what the adverts did.
	waitCounters(t, v, func(c Counters) bool { return c.Transitions == 1 })
	peer := netip.MustParseAddr("10.0.0.3")
	good := advert(t, nil)
	badSum := append([]byte(nil), good...)
	badSum[offCounter] ^= 0xff
	wrongKey := advert(t, func(a *Advert) { a.HMAC[0] ^= 1 })
	v3 := advert(t, func(a *Advert) { a.Version = 3 })
	for _, p := range []rxPacket{
		{src: peer, ttl: 254, payload: good},      // bad TTL
		{src: peer, ttl: 255, payload: badSum},    // bad checksum
		{src: peer, ttl: 255, payload: wrongKey},  // bad HMAC
		{src: peer, ttl: 255, payload: v3},        // VRRPv3 or CARP v3
		{src: peer, ttl: 255, payload: good[:20]}, // truncated
		{src: f.self, ttl: 255, payload: good},    // our own address
	} {
		v.deliver(p)
	}
	s := waitCounters(t, v, func(c Counters) bool {
		return c.BadTTL == 1 && c.BadChecksum == 1 && c.BadHMAC == 1 && c.BadVersion == 2 && c.OwnPacket == 1
	})
	if s.Counters.AdvertsReceived != 0 || s.State != "BACKUP" || s.Master != "" {
		t.Fatalf("bad input changed the vhost: %+v", s)
	}
	v.deliver(rxPacket{src: peer, ttl: 255, payload: good})
	s = waitCounters(t, v, func(c Counters) bool { return c.AdvertsReceived == 1 })
	if s.Master != "10.0.0.3" || s.MasterSeen == nil {
		t.Fatalf("good advert not recorded: %+v", s)
	}
	if s.Counters.Transitions != 1 {
		t.Fatalf("transitions %d, want 1 (INIT->BACKUP)", s.Counters.Transitions)
	}
}

// TestTakeoverAndStop: a lone vhost becomes master after master-down,
// adds and announces its VIPs, sends authenticated adverts, and on stop
// sends the bow-out and removes the VIPs.
func TestTakeoverAndStop(t *testing.T) {
	cfg := testCfg
	cfg.Params = Params{AdvSkew: 20} // 78 ms interval, 234 ms master-down
	var got []Transition
	var mu sync.Mutex
	v, f, stop := startVHost(t, cfg, func(tr Transition) { mu.Lock(); got = append(got, tr); mu.Unlock() })
	waitCounters(t, v, func(c Counters) bool { return c.AdvertsSent >= 4 })
	if s := v.Status(); s.State != "MASTER" || s.Master != "self" {
		t.Fatalf("status %+v", s)
	}
	stop()
	mu.Lock()
	if len(got) != 3 || got[1].To != Master || got[1].Master != f.self || got[2].To != Init {
		t.Errorf("transitions %+v", got)
	}
	mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.sent[len(f.sent)-1]
	if last.AdvBase != BowOutAdvBase || last.AdvSkew != BowOutAdvSkew {
		t.Fatalf("last advert %+v, want the bow-out", last)
	}
	au := NewAuth("secret", 7, []netip.Addr{netip.MustParseAddr("10.0.0.1")})
	for _, a := range f.sent {
		if !au.Verify(a.Counter, a.HMAC) || a.VHID != 7 || a.AuthLen != AuthLen {
			t.Fatalf("advert %+v does not authenticate", a)
		}
	}
	// Added once; announced at takeover and again after two adverts.
	if f.added != 1 || f.announce != 2 {
		t.Fatalf("added %d announced %d", f.added, f.announce)
	}
	// Removed at start (stale VIPs) and at stop.
	if f.removed < 2 {
		t.Fatalf("removed %d times", f.removed)
	}
}

// TestSendErrorsDemote: three failed sends demote the vhost by one, which
// it advertises once sending works again... and then undoes.
func TestSendErrorsDemote(t *testing.T) {
	cfg := testCfg
	cfg.Params = Params{AdvSkew: 10}
	v, f, _ := startVHost(t, cfg)
	waitCounters(t, v, func(c Counters) bool { return c.AdvertsSent >= 1 })
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	waitCounters(t, v, func(c Counters) bool { return c.SendErrors >= SendErrorDemoteThreshold })
	if d := v.Status().Demotion; d != 1 {
		t.Fatalf("demotion %d after send errors", d)
	}
	f.mu.Lock()
	f.fail = false
	f.mu.Unlock()
	n := f.sends()
	for i := 0; i < 200 && v.Status().Demotion != 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if v.Status().Demotion != 0 || f.sends() <= n {
		t.Fatal("demotion not undone after a successful send")
	}
}

// TestUpdateKeepsState: a changed config applies without a transition.
func TestUpdateKeepsState(t *testing.T) {
	cfg := testCfg
	cfg.Params = Params{AdvSkew: 10}
	v, _, _ := startVHost(t, cfg)
	waitCounters(t, v, func(c Counters) bool { return c.AdvertsSent >= 2 })
	cfg.Params.AdvSkew = 12
	cfg.Addresses = append(cfg.Addresses, netip.MustParsePrefix("fd00::1/64"))
	v.Update(cfg)
	s := v.Status()
	if s.State != "MASTER" || s.Counters.Transitions != 2 || s.AdvSkew != 12 || len(s.Addresses) != 2 {
		t.Fatalf("after update: %+v", s)
	}
}
