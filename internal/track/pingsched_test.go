package track

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// fakePath is a simulated network path for the ping tracker's scheduling
// tests: it answers echo requests after rtt unless it is dead or the
// request or reply is lost. The tests run in a synctest bubble, so time is
// virtual and every timing below is exact.
type fakePath struct {
	mu   sync.Mutex
	dead bool
	rtt  time.Duration
	loss func() bool // called once per direction; nil: no loss
	sent []time.Time
	// extra delays the replies of some targets beyond rtt.
	extra map[netip.Addr]time.Duration
}

func (f *fakePath) open(v6 bool, dev string) (ICMPConn, error) {
	return &fakeConn{f: f, v6: v6, in: make(chan fakePkt, 256), closed: make(chan struct{})}, nil
}

func (f *fakePath) probes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.sent...)
}

func (f *fakePath) set(dead bool, rtt time.Duration) {
	f.mu.Lock()
	f.dead, f.rtt = dead, rtt
	f.mu.Unlock()
}

type fakePkt struct {
	b   []byte
	src netip.Addr
}

type fakeConn struct {
	f      *fakePath
	v6     bool
	in     chan fakePkt
	once   sync.Once
	closed chan struct{}
}

func (c *fakeConn) WriteTo(msg []byte, dst netip.Addr) error {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, time.Now())
	if f.dead || f.loss != nil && (f.loss() || f.loss()) {
		return nil
	}
	reply := asReply(msg, c.v6)
	if !c.v6 {
		reply = ipv4(reply)
	}
	time.AfterFunc(f.rtt+f.extra[dst], func() {
		select {
		case c.in <- fakePkt{reply, dst}:
		case <-c.closed:
		}
	})
	return nil
}

func (c *fakeConn) ReadFrom(buf []byte, deadline time.Time) (int, netip.Addr, error) {
	select {
	case p := <-c.in:
		return copy(buf, p.b), p.src, nil
	case <-c.closed:
		return 0, netip.Addr{}, net.ErrClosed
	}
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func fakeTracker(t *testing.T, f *fakePath, cfg config.Track) (*Tracker, chan Report) {
	cfg.Name, cfg.Type = "fake", config.TrackPing
	if cfg.Targets == nil {
		cfg.Targets = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	}
	reports := make(chan Report, 16)
	tr := Start(context.Background(), cfg, Env{ICMP: f.open}, func(r Report) { reports <- r })
	return tr, reports
}

// TestPingDetectionTime: with the defaults (interval 1, timeout 1, down 3)
// and a 1 ms path, a path that dies at any point of the interval is down
// 1.3-2.3 s later (docs/trackers.md#fast-probing), and up again `up`
// rounds after it returns.
func TestPingDetectionTime(t *testing.T) {
	for _, phase := range []time.Duration{10 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond, 990 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			f := &fakePath{rtt: time.Millisecond}
			tr, reports := fakeTracker(t, f, config.Track{})
			defer tr.Stop()
			time.Sleep(5*time.Second + phase)
			f.set(true, time.Millisecond)
			died := time.Now()
			r := <-reports
			detect := time.Since(died)
			if !r.Down || r.Reason != "0 of 1 targets answered for 3 rounds" {
				t.Fatalf("report %+v", r)
			}
			if detect < 1300*time.Millisecond || detect > 2300*time.Millisecond {
				t.Errorf("phase %v: down after %v, want 1.3-2.3 s", phase, detect)
			}
			// 3 probes in the first bad round, 2 in each suspect one.
			n := 0
			for _, at := range f.probes() {
				if at.After(died) {
					n++
				}
			}
			if n != 7 {
				t.Errorf("phase %v: %d probes while detecting, want 7", phase, n)
			}
			// Down, it probes at the normal pace: 3 probes a round, one
			// round a second.
			before := len(f.probes())
			time.Sleep(10 * time.Second)
			if n := len(f.probes()) - before; n > 31 {
				t.Errorf("phase %v: %d probes in 10 s while down, want at most 31", phase, n)
			}
			f.set(false, time.Millisecond)
			back := time.Now()
			r = <-reports
			// The first good round may be the one under way (a retry
			// within its first 100 ms gets the answer), then 2 more.
			if up := time.Since(back); r.Down || up < 1900*time.Millisecond || up > 3*time.Second+10*time.Millisecond {
				t.Errorf("phase %v: up after %v (%+v), want 1.9-3.01 s", phase, up, r)
			}
		})
	}
}

// TestPingRetrySchedule: the probes of a round against a dead target go
// out at 0, retry wait and twice the retry wait (3 × RTT clamped to
// 50 ms-timeout/4; here RTT 40 ms: 120 ms).
func TestPingRetrySchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakePath{rtt: 40 * time.Millisecond}
		tr, _ := fakeTracker(t, f, config.Track{})
		defer tr.Stop()
		time.Sleep(3500 * time.Millisecond) // rounds at 0, 1, 2, 3 s
		f.set(true, 40*time.Millisecond)
		time.Sleep(time.Second) // the round at 4 s
		var got []time.Duration
		base := time.Time{}
		for _, at := range f.probes() {
			if at.Before(time.Now().Add(-time.Second)) {
				continue
			}
			if base.IsZero() {
				base = at
			}
			got = append(got, at.Sub(base))
		}
		want := []time.Duration{0, 120 * time.Millisecond, 240 * time.Millisecond}
		if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("probes at %v, want %v", got, want)
		}
	})
}

// TestPingNoFlapOnLoss: 10 % independent loss each way for 3 hours of
// rounds (10 800) with the defaults: never down. And a slow path (RTT
// jumps from 1 ms to 400 ms, past the suspect timeout) is not a dead one.
func TestPingNoFlapOnLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		f := &fakePath{rtt: 5 * time.Millisecond, loss: func() bool { return rng.IntN(10) == 0 }}
		tr, reports := fakeTracker(t, f, config.Track{})
		defer tr.Stop()
		time.Sleep(3 * time.Hour)
		f.set(false, 400*time.Millisecond)
		time.Sleep(time.Minute)
		select {
		case r := <-reports:
			t.Fatalf("report %+v", r)
		default:
		}
		st := tr.Status()
		t.Logf("rounds %d good %d bad %d, %+v", st.Rounds, st.Good, st.Bad, st.Targets)
		if st.Rounds < 10800 || st.State != StateUp {
			t.Fatalf("status %+v", st)
		}
	})
}

// fakeNetifd serves one network's status and wakes its watchers on
// notify; for the scheduling test below.
type fakeNetifd struct {
	mu sync.Mutex
	st NetStatus
	ch chan struct{}
}

func (n *fakeNetifd) Status(ctx context.Context, network string) (NetStatus, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st, nil
}

func (n *fakeNetifd) Watch(ctx context.Context) <-chan struct{} { return n.ch }

func (n *fakeNetifd) notify() {
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// TestInterfaceEventSpacing: netifd events a few milliseconds apart do
// not make `down` rounds in a few milliseconds: event-woken rounds are at
// least max(interval/5, 50 ms) apart, like a ping tracker's fast rounds,
// so a short blip that sends a burst of events never meets `down` at once.
func TestInterfaceEventSpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nd := &fakeNetifd{st: NetStatus{Up: true, Address: true, DefaultRoute: true}, ch: make(chan struct{}, 1)}
		reports := make(chan Report, 4)
		tr := Start(context.Background(), config.Track{Name: "i", Type: config.TrackInterface, Device: "wan",
			Interval: time.Second}, Env{Netifd: nd}, func(r Report) { reports <- r })
		defer tr.Stop()
		synctest.Wait()
		nd.mu.Lock()
		nd.st = NetStatus{}
		nd.mu.Unlock()
		for i := 0; i < 4; i++ {
			nd.notify()
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
		}
		check := func(at string, bad uint64) {
			t.Helper()
			if st := tr.Status(); st.Bad != bad || len(reports) != 0 {
				t.Fatalf("%s after the first event: %d bad rounds, %d reports; want %d and none", at, st.Bad, len(reports), bad)
			}
		}
		check("20 ms", 0)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		check("120 ms", 0) // the old 50 ms spacing had 2 bad rounds here
		time.Sleep(130 * time.Millisecond)
		synctest.Wait()
		check("250 ms", 1)
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		check("450 ms", 2)
	})
}

// TestPingLateReplyBetweenRounds: with two targets and reliability 1 the
// round ends at the first answer; the second target's reply arrives after
// the round. Once the path dies, that queued reply must not count as an
// answer in the next round (it made detection a whole round slower).
func TestPingLateReplyBetweenRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		f := &fakePath{rtt: time.Millisecond, extra: map[netip.Addr]time.Duration{b: 5 * time.Millisecond}}
		tr, reports := fakeTracker(t, f, config.Track{Targets: []netip.Addr{a, b}})
		defer tr.Stop()
		time.Sleep(5*time.Second + 2*time.Millisecond) // the round at 5 s has ended, b's reply is on its way
		f.set(true, time.Millisecond)
		died := time.Now()
		r := <-reports
		if d := time.Since(died); !r.Down || d > 2300*time.Millisecond {
			t.Fatalf("down after %v (%+v), want at most 2.3 s", d, r)
		}
	})
}

// TestProbeNow: ProbeNow starts a round at once, in suspect mode (the
// short timeout), between normal rounds; on a healthy path it is good
// within the RTT, on a dead one it is bad after the short timeout and the
// tracker reports suspect until down.
func TestProbeNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakePath{rtt: time.Millisecond}
		tr, reports := fakeTracker(t, f, config.Track{})
		defer tr.Stop()
		time.Sleep(2500 * time.Millisecond) // mid-interval: rounds at 0, 1, 2 s
		n := len(f.probes())
		good := tr.Status().Good
		tr.ProbeNow()
		time.Sleep(10 * time.Millisecond)
		if p := f.probes(); len(p) != n+1 {
			t.Fatalf("%d probes 10 ms after ProbeNow, want %d", len(p), n+1)
		}
		if st := tr.Status(); st.Good != good+1 || st.Suspect {
			t.Fatalf("after ProbeNow on a healthy path: good %d (was %d), suspect %v", st.Good, good, st.Suspect)
		}
		time.Sleep(2 * time.Second)
		f.set(true, time.Millisecond)
		time.Sleep(200 * time.Millisecond) // between rounds again
		bad := tr.Status().Bad
		tr.ProbeNow()
		// Suspect timeout: clamp(4 × 1 ms, 100 ms, 1 s) = 100 ms.
		time.Sleep(150 * time.Millisecond)
		if st := tr.Status(); st.Bad != bad+1 || !st.Suspect || st.State != StateUp {
			t.Fatalf("150 ms after ProbeNow on a dead path: bad %d (was %d), suspect %v, state %s; want one bad round, suspect, up",
				st.Bad, bad, st.Suspect, st.State)
		}
		r := <-reports
		if !r.Down {
			t.Fatalf("report %+v, want down", r)
		}
		if st := tr.Status(); st.Suspect {
			t.Errorf("down tracker still suspect")
		}
	})
}
