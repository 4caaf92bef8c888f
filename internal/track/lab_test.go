package track

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
)

// pingLab is a router namespace (where the tracker's sockets live) and an
// upstream namespace with the targets, on one switch.
type pingLab struct {
	r, up   *lab.Host
	targets []netip.Addr
}

func newPingLab(t *testing.T) *pingLab {
	t.Helper()
	lab.Require(t)
	l, err := lab.New("trk")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("wan")
	if err != nil {
		t.Fatal(err)
	}
	p := &pingLab{targets: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}}
	if p.r, err = l.Host("r"); err != nil {
		t.Fatal(err)
	}
	if p.up, err = l.Host("up"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(p.r, sw, "eth0", "192.0.2.2/24", "2001:db8::2/64"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(p.up, sw, "eth0", "192.0.2.1/24", "2001:db8::1/64"); err != nil {
		t.Fatal(err)
	}
	return p
}

// env opens the tracker's sockets in the router namespace.
func (p *pingLab) env() Env {
	return Env{ICMP: func(v6 bool, dev string) (c ICMPConn, err error) {
		if derr := p.r.Do(func() error { c, err = openICMP(v6, dev); return nil }); derr != nil {
			return nil, derr
		}
		return c, err
	}}
}

func (p *pingLab) run(t *testing.T, h *lab.Host, args ...string) {
	t.Helper()
	if _, err := h.Run(context.Background(), args...); err != nil {
		t.Fatal(err)
	}
}

// dropEcho makes the upstream ignore echo requests (both families), or
// answer again.
func (p *pingLab) dropEcho(t *testing.T, drop bool) {
	t.Helper()
	if !drop {
		p.run(t, p.up, "nft", "delete table inet trkdrop")
		return
	}
	p.run(t, p.up, "nft", "add table inet trkdrop; add chain inet trkdrop in { type filter hook input priority 0; }; "+
		"add rule inet trkdrop in icmp type echo-request drop; add rule inet trkdrop in icmpv6 type echo-request drop")
}

// TestPingLabDownUp: a real upstream stops answering (nftables drops its
// echo requests): the tracker goes down after `down` rounds, within the
// fast-probing bound, and up again after `up` good rounds.
func TestPingLabDownUp(t *testing.T) {
	p := newPingLab(t)
	reports := make(chan Report, 10)
	cfg := config.Track{Name: "wan_ping", Type: config.TrackPing, Targets: p.targets,
		Interval: time.Second, Down: 3, Up: 3, Group: "wan", Weight: 2}
	tr := Start(context.Background(), cfg, p.env(), func(r Report) { reports <- r })
	defer tr.Stop()
	waitState(t, tr, StateUp, 0)

	p.dropEcho(t, true)
	dropped := time.Now()
	r := waitReport(t, reports)
	detect := time.Since(dropped)
	t.Logf("down after %v: %+v", detect, r)
	if !r.Down || r.Value != 2 || r.Group != "wan" || r.Reason != "0 of 2 targets answered for 3 rounds" || r.Name != "wan_ping" {
		t.Fatalf("report %+v", r)
	}
	// Worst case: the drop just after a good round's reply, the next round
	// 1 s later, bad after the 1 s timeout, then two suspect rounds of
	// 100 ms spaced 200 ms: 2.3 s, plus scheduling on a loaded machine.
	// keepalived's `ping -c1 -W1` with fall 3 needs at least 3 s.
	if detect > 2800*time.Millisecond {
		t.Fatalf("detection took %v, want ≤ 2.8 s", detect)
	}
	st := tr.Status()
	if st.State != StateDown || st.Bad < 3 {
		t.Fatalf("status %+v", st)
	}
	for _, tg := range st.Targets {
		if tg.Sent < tg.Received+6 {
			t.Errorf("target %+v: want retries counted as sent", tg)
		}
	}

	p.dropEcho(t, false)
	restored := time.Now()
	r = waitReport(t, reports)
	t.Logf("up after %v: %+v", time.Since(restored), r)
	// reliability 1: a round ends as soon as one target answered.
	if r.Down || r.Value != 0 || !strings.HasSuffix(r.Reason, " of 2 targets answered for 3 rounds") {
		t.Fatalf("report %+v", r)
	}
	// Up needs 3 good rounds at the normal pace: about 2 intervals after
	// the first good one (which may start as the rule goes).
	if d := time.Since(restored); d < 1800*time.Millisecond || d > 5*time.Second {
		t.Fatalf("up after %v, want 1.8-5 s", d)
	}
}

// TestPingLabLoss: 10 % independent loss each way on the probed path, the
// defaults but a 0.2 s interval: retries absorb it and the tracker never
// goes down.
func TestPingLabLoss(t *testing.T) {
	p := newPingLab(t)
	// The upstream loses 10 % of the requests and 10 % of the replies, at
	// random (a local drop on the router would fail the send instead).
	p.run(t, p.up, "nft", "add table inet trkloss; "+
		"add chain inet trkloss in { type filter hook input priority 0; }; "+
		"add chain inet trkloss out { type filter hook output priority 0; }; "+
		"add rule inet trkloss in meta l4proto { icmp, ipv6-icmp } numgen random mod 10 0 drop; "+
		"add rule inet trkloss out meta l4proto { icmp, ipv6-icmp } numgen random mod 10 0 drop")
	cfg := config.Track{Name: "lossy", Type: config.TrackPing, Targets: p.targets[:1], Interval: 200 * time.Millisecond}
	tr := Start(context.Background(), cfg, p.env(), func(r Report) { t.Errorf("report %+v", r) })
	defer tr.Stop()
	time.Sleep(15 * time.Second)
	st := tr.Status()
	t.Logf("%+v", st)
	tg := st.Targets[0]
	if st.State != StateUp || st.Rounds < 50 {
		t.Fatalf("status %+v", st)
	}
	// The loss was real: probes went missing and were retried.
	if tg.Sent <= st.Rounds || tg.Received >= tg.Sent {
		t.Fatalf("no loss seen: %+v", tg)
	}
}

// TestPingLabWrongReplies: echo replies from another address (a target
// answered by someone else) and of another pinger are counted, never
// taken for answers.
func TestPingLabWrongSource(t *testing.T) {
	p := newPingLab(t)
	// The upstream answers echo requests for 192.0.2.9 from 192.0.2.1: a
	// stateless rewrite of the destination before routing, so the reply
	// leaves from its own address.
	p.run(t, p.r, "ip", "route", "add", "192.0.2.9/32", "via", "192.0.2.1")
	p.run(t, p.up, "nft", "add table ip trkspoof; add chain ip trkspoof pre { type filter hook prerouting priority -300; }; "+
		"add rule ip trkspoof pre ip daddr 192.0.2.9 notrack ip daddr set 192.0.2.1")
	cfg := config.Track{Name: "spoofed", Type: config.TrackPing, Targets: []netip.Addr{netip.MustParseAddr("192.0.2.9")},
		Interval: 100 * time.Millisecond, Down: 2}
	reports := make(chan Report, 4)
	tr := Start(context.Background(), cfg, p.env(), func(r Report) { reports <- r })
	defer tr.Stop()
	r := waitReport(t, reports)
	st := tr.Status()
	t.Logf("%+v", st)
	if !r.Down || st.Targets[0].Received != 0 || st.Dropped[dropSource] == 0 {
		t.Fatalf("report %+v status %+v", r, st)
	}
}

// TestPingLabUnroutableTarget: a target the router has no route to (the
// send fails at once) does not keep the other targets from being probed:
// with reliability 1 every round is good, the error is shown.
func TestPingLabUnroutableTarget(t *testing.T) {
	p := newPingLab(t)
	cfg := config.Track{Name: "half", Type: config.TrackPing, Interval: 100 * time.Millisecond,
		Targets: []netip.Addr{netip.MustParseAddr("2001:db8:ffff::1"), p.targets[0]}}
	tr := Start(context.Background(), cfg, p.env(), func(r Report) { t.Errorf("report %+v", r) })
	defer tr.Stop()
	waitRounds(t, tr, 5)
	st := tr.Status()
	if st.Good < 5 || st.Bad != 0 || st.State != StateUp || st.Targets[1].Received < 5 || st.Targets[0].Received != 0 {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(st.Reason, "1 of 2 targets answered") {
		t.Fatalf("reason %q", st.Reason)
	}
}
