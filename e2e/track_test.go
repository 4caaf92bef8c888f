package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/ubus/json"
)

// The proof of issue #11 (trackers, demotion groups, split brain) against
// its contract: UCI `config track`, `carpd demote -g G --source S --set N
// --ttl T`, `carpd reload`, and the status JSON fields trackers,
// demotion.groups, vhids[].demotion_sources, peer_demotion, split_brain.
// The lab is in tracklab_test.go.

// vhidTransitions returns each vhid's transition counter, "lan/1" → n.
func vhidTransitions(v tView) map[string]uint64 {
	m := map[string]uint64{}
	for _, x := range v.VHIDs {
		m[fmt.Sprintf("%s/%d", x.Interface, x.VHID)] = x.Counters.Transitions
	}
	return m
}

// diffTransitions returns after − before per vhid, for the vhids that moved.
func diffTransitions(before, after map[string]uint64) map[string]uint64 {
	d := map[string]uint64{}
	for k, a := range after {
		if a != before[k] {
			d[k] = a - before[k]
		}
	}
	return d
}

func hasSource(ss []tSource, group, name string, value int) bool {
	for _, s := range ss {
		if s.Group == group && s.Name == name && s.Value == value {
			return true
		}
	}
	return false
}

// bothState reports whether r is in state on the LAN and the WAN vhid.
func (c *cluster) bothState(r *router, state string) bool {
	return c.state(r, "lan", 1) == state && c.state(r, "wan", 2) == state
}

// TestTrackUpstreamLoss: the master's upstream gateway stops answering
// while all of the master's links stay up. With a ping tracker at its
// defaults (interval 1, timeout 1, down 3, up 3, weight 1, group carp) the
// backup takes both VIPs within down × interval + master-down, the
// client's TCP stream through the firewall survives (conntrack sync on),
// status says why r1 is BACKUP, and when the path comes back r1 takes the
// VIPs back exactly once (preempt), not before `up` good rounds.
func TestTrackUpstreamLoss(t *testing.T) {
	tl := newTrackLab(t)
	c := tl.cluster
	r1, r2 := c.routers[0], c.routers[1]
	tl.establish(true, pingTracker("wan_ping"))
	s := tl.startStream()
	c.waitFor(5*time.Second, "the stream echoing", func() bool { return s.echoes.Load() >= 5 })
	c.waitFor(5*time.Second, "the stream synced to r2", func() bool { return c.status(r2).Sync.FlowsPeer >= 1 })
	before1, before2 := vhidTransitions(tl.view(r1)), vhidTransitions(tl.view(r2))

	const down, up, interval = 3, 3, time.Second
	bound := down*interval + masterDown
	cut := time.Now()
	tl.gateway(tl.gw1, "dead.nft", true)
	c.waitFor(bound+3*time.Second, "r2 MASTER of both vhids", func() bool { return c.bothState(r2, "MASTER") })
	took := time.Since(cut)
	t.Logf("r2 master of both %v after the cut (bound down × interval + master-down = %v)", took.Round(time.Millisecond), bound)
	// 100 ms for the 20 ms polling and two status calls.
	if took > bound+100*time.Millisecond {
		t.Errorf("takeover took %v, over down × interval + master-down = %v", took, bound)
	}
	c.waitFor(2*time.Second, "r1 BACKUP of both", func() bool { return c.bothState(r1, "BACKUP") })
	c.onlyHolder(r2, "lan", vip4)
	c.onlyHolder(r2, "wan", wanVIP4)

	// Why am I BACKUP?
	v1 := tl.view(r1)
	tr, ok := v1.tracker("wan_ping")
	if !ok || tr.State != "down" || tr.Value != 1 || tr.Type != "ping" || tr.Group != "carp" || tr.Weight != 1 || tr.Reason == "" {
		t.Errorf("r1's tracker: %+v (want down, value 1, ping, group carp, weight 1, a reason)", tr)
	}
	if len(tr.Targets) != 1 || tr.Targets[0].Address != trackTarget || tr.Targets[0].Received >= tr.Targets[0].Sent {
		t.Errorf("r1's tracker targets: %+v", tr.Targets)
	}
	for _, v := range []tVHID{v1.vhid("lan", 1), v1.vhid("wan", 2)} {
		if v.Demotion != 1 || !hasSource(v.DemotionSources, "carp", "wan_ping", 1) || !contains(v.Groups, "carp") {
			t.Errorf("r1 %s vhid %d: demotion %d, groups %v, sources %+v; want 1 from carp/wan_ping", v.Interface, v.VHID, v.Demotion, v.Groups, v.DemotionSources)
		}
		if v.PeerDemotion == nil || *v.PeerDemotion != 0 {
			t.Errorf("r1 %s vhid %d: peer_demotion %v, want 0 (r2's)", v.Interface, v.VHID, v.PeerDemotion)
		}
	}
	carpGroup := false
	for _, g := range v1.Demotion.Groups {
		if g.Name == "carp" && g.Demotion == 1 && hasSource(g.Sources, "carp", "wan_ping", 1) {
			carpGroup = true
		}
	}
	if !carpGroup {
		t.Errorf("r1 demotion.groups: %+v, want carp = 1 from wan_ping", v1.Demotion.Groups)
	}
	if v := tl.view(r2).vhid("lan", 1); v.Demotion != 0 {
		t.Errorf("r2 lan vhid demotion %d, sources %+v", v.Demotion, v.DemotionSources)
	}

	// The stream goes on through r2.
	moved := time.Now()
	c.waitFor(15*time.Second, "the stream echoing through r2", func() bool { return s.echoedAfter(moved) })
	if err := s.failed(); err != nil {
		t.Fatalf("the TCP stream broke: %v", err)
	}

	heal := time.Now()
	tl.gateway(tl.gw1, "dead.nft", false)
	c.waitFor((up+3)*interval+2*time.Second, "r1 MASTER of both again", func() bool { return c.bothState(r1, "MASTER") })
	back := time.Since(heal)
	t.Logf("r1 master of both again %v after the path came back (up = %d rounds of %v)", back.Round(time.Millisecond), up, interval)
	// up good rounds: the first can end right after the heal, so at
	// least (up − 1) intervals; then r1's next advert (≤ 1 s) preempts.
	if back < (up-1)*interval {
		t.Errorf("r1 took the VIPs back after %v, before %d good rounds", back, up)
	}
	if back > (up+2)*interval+500*time.Millisecond {
		t.Errorf("r1 took the VIPs back only after %v", back)
	}
	time.Sleep(masterDown + 500*time.Millisecond) // a flap would show by now
	c.onlyHolder(r1, "lan", vip4)
	c.onlyHolder(r1, "wan", wanVIP4)
	after1, after2 := vhidTransitions(tl.view(r1)), vhidTransitions(tl.view(r2))
	want := map[string]uint64{"lan/1": 2, "wan/2": 2} // away once, back once
	if d := diffTransitions(before1, after1); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("r1 transitions since the cut: %v, want %v (MASTER→BACKUP→MASTER once per vhid)", d, want)
	}
	if d := diffTransitions(before2, after2); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Errorf("r2 transitions since the cut: %v, want %v", d, want)
	}
	if tr, _ := tl.view(r1).tracker("wan_ping"); tr.State != "up" || tr.Value != 0 {
		t.Errorf("r1's tracker after the path came back: %+v", tr)
	}
	healed := time.Now()
	c.waitFor(15*time.Second, "the stream echoing through r1 again", func() bool { return s.echoedAfter(healed) })
	if err := s.failed(); err != nil {
		t.Fatalf("the TCP stream broke on the way back: %v", err)
	}
	t.Logf("the stream: %d echoes, no error", s.echoes.Load())
}

func contains(ss []string, v string) bool {
	for _, s := range ss {
		if s == v {
			return true
		}
	}
	return false
}

// TestTrackSharedFailureMovesNothing: both upstream gateways die at once;
// both routers' trackers go down, both are demoted equally, and no VIP
// moves, neither while the trackers go down one after the other nor when
// the paths come back.
func TestTrackSharedFailureMovesNothing(t *testing.T) {
	tl := newTrackLab(t)
	c := tl.cluster
	r1, r2 := c.routers[0], c.routers[1]
	tl.establish(false, pingTracker("wan_ping"))
	before1, before2 := vhidTransitions(tl.view(r1)), vhidTransitions(tl.view(r2))
	// trackers says when each router's tracker changed: the two go down
	// (and up) at different moments, each in its own probing rhythm.
	trackers := func() string {
		var b strings.Builder
		for _, r := range []*router{r1, r2} {
			tr, _ := tl.view(r).tracker("wan_ping")
			fmt.Fprintf(&b, " %s: %s since %s (%s);", r.name, tr.State, tr.Since.Format("15:04:05.000"), tr.Reason)
		}
		return b.String()
	}
	stable := func(what string) {
		t.Helper()
		if d := diffTransitions(before1, vhidTransitions(tl.view(r1))); len(d) > 0 {
			t.Fatalf("%s: r1's vhids moved: %v; trackers:%s", what, d, trackers())
		}
		if d := diffTransitions(before2, vhidTransitions(tl.view(r2))); len(d) > 0 {
			t.Fatalf("%s: r2's vhids moved: %v; trackers:%s", what, d, trackers())
		}
		c.onlyHolder(r1, "lan", vip4)
		c.onlyHolder(r1, "wan", wanVIP4)
	}
	trackersAre := func(state string) bool {
		for _, r := range []*router{r1, r2} {
			if tr, _ := tl.view(r).tracker("wan_ping"); tr.State != state {
				return false
			}
		}
		return true
	}
	tl.gateway(tl.gw1, "dead.nft", true)
	tl.gateway(tl.gw2, "dead.nft", true)
	cut := time.Now()
	c.waitFor(8*time.Second, "both trackers down", func() bool { stable("going down"); return trackersAre("down") })
	t.Logf("both trackers down %v after the cut", time.Since(cut).Round(time.Millisecond))
	for end := time.Now().Add(masterDown + time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		stable("both down")
	}
	d1, d2 := tl.view(r1).vhid("lan", 1), tl.view(r2).vhid("lan", 1)
	if d1.Demotion != 1 || d2.Demotion != 1 {
		t.Errorf("demotion r1 %d (%+v), r2 %d (%+v); want 1 and 1", d1.Demotion, d1.DemotionSources, d2.Demotion, d2.DemotionSources)
	}
	tl.gateway(tl.gw1, "dead.nft", false)
	tl.gateway(tl.gw2, "dead.nft", false)
	c.waitFor(8*time.Second, "both trackers up", func() bool { stable("coming back"); return trackersAre("up") })
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		stable("both up again")
	}
}

// TestTrackLossNoMove: one packet in ten lost on the probed path (r1's
// gateway drops at random) with the tracker's defaults: no move in 60 s.
func TestTrackLossNoMove(t *testing.T) {
	tl := newTrackLab(t)
	c := tl.cluster
	r1, r2 := c.routers[0], c.routers[1]
	tl.establish(false, pingTracker("wan_ping"))
	before1, before2 := vhidTransitions(tl.view(r1)), vhidTransitions(tl.view(r2))
	tl.gateway(tl.gw1, "lossy.nft", true)
	start := time.Now()
	worst := 0
	for time.Since(start) < 60*time.Second {
		time.Sleep(500 * time.Millisecond)
		v := tl.view(r1)
		tr, _ := v.tracker("wan_ping")
		if tr.State != "up" || v.vhid("lan", 1).Demotion != 0 {
			t.Fatalf("after %v of 10 %% loss: tracker %+v, lan demotion %d", time.Since(start).Round(time.Second), tr, v.vhid("lan", 1).Demotion)
		}
		worst = max(worst, tr.Bad)
		if d := diffTransitions(before1, vhidTransitions(v)); len(d) > 0 {
			t.Fatalf("r1's vhids moved after %v: %v", time.Since(start).Round(time.Second), d)
		}
	}
	if d := diffTransitions(before2, vhidTransitions(tl.view(r2))); len(d) > 0 {
		t.Fatalf("r2's vhids moved: %v", d)
	}
	c.onlyHolder(r1, "lan", vip4)
	tr, _ := tl.view(r1).tracker("wan_ping")
	out := c.run(tl.gw1, "nft", "list", "table", "inet", "lossy")
	t.Logf("after 60 s: tracker rounds %d, good %d, bad %d, targets %+v; gateway: %s", tr.Rounds, tr.Good, tr.Bad, tr.Targets, strings.Join(strings.Fields(out), " "))
	// The loss must have reached the tracker, or this proves nothing.
	if len(tr.Targets) != 1 || tr.Targets[0].Received >= tr.Targets[0].Sent {
		t.Fatalf("no probe lost in 60 s of 10 %% loss: %+v", tr.Targets)
	}
}

// TestTrackDemoteTTL: a named source set through the control socket
// (`carpd demote -g carp --source S --set N --ttl 2`) demotes at once
// (the backup takes over), shows in status with its expiry, and expires by
// itself: the source goes and the master takes the VIP back.
func TestTrackDemoteTTL(t *testing.T) {
	c, r1, r2 := twoRouters(t, true)
	set := time.Now()
	c.run(r1.host, carpdBin, "demote", "-s", r1.sock(), "-g", "carp", "--source", "mwan3", "--set", "2", "--ttl", "2")
	v := c.view(r1)
	var src *tSource
	for _, g := range v.Demotion.Groups {
		for i, s := range g.Sources {
			if g.Name == "carp" && s.Name == "mwan3" {
				src = &g.Sources[i]
			}
		}
	}
	if src == nil || src.Value != 2 || src.Group != "carp" || src.Expires == nil {
		t.Fatalf("r1 demotion.groups after the set: %+v", v.Demotion.Groups)
	}
	if left := src.Expires.Sub(set); left <= time.Second || left > 2*time.Second+500*time.Millisecond {
		t.Errorf("source expires %v after the set, want about 2 s", left)
	}
	if lv := v.vhid("lan", 1); lv.Demotion != 2 || !hasSource(lv.DemotionSources, "carp", "mwan3", 2) {
		t.Errorf("r1 lan vhid: demotion %d, sources %+v", lv.Demotion, lv.DemotionSources)
	}
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	c.waitFor(4*time.Second, "the source expiring", func() bool {
		for _, g := range c.view(r1).Demotion.Groups {
			for _, s := range g.Sources {
				if s.Name == "mwan3" {
					return false
				}
			}
		}
		return true
	})
	gone := time.Since(set)
	t.Logf("source gone %v after the set (ttl 2 s)", gone.Round(time.Millisecond))
	if gone < 2*time.Second-100*time.Millisecond {
		t.Errorf("the source went after %v, before its ttl", gone)
	}
	if d := c.view(r1).vhid("lan", 1).Demotion; d != 0 {
		t.Errorf("r1 demotion %d after the expiry", d)
	}
	c.waitState(r1, "lan", 1, "MASTER", 4*time.Second)
	c.onlyHolder(r1, "lan", vip4)
}

// TestTrackBadReload: a reload whose tracker section has a bad option is
// refused with FILE:LINE: track 'NAME': option X, and the running tracker
// keeps running (its rounds go on, its state stays).
func TestTrackBadReload(t *testing.T) {
	c := newCluster(t, 1)
	r1 := c.routers[0]
	tracker := "config track 'lan_ping'\n\toption type 'ping'\n\tlist target '10.0.1.100'\n\toption interval '0.5'\n"
	good := confText(false, lanVHID(0)) + tracker
	c.start(r1, good)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.waitFor(5*time.Second, "the tracker up", func() bool {
		tr, _ := c.view(r1).tracker("lan_ping")
		return tr.State == "up" && tr.Rounds >= 2
	})
	for _, bad := range []struct{ option, line string }{
		{"interval", "\toption interval 'soon'\n"},
		{"type", "\toption type 'pong'\n"},
		{"down", "\toption down '0'\n"},
		{"group", "\toption group 'no such group name'\n"},
		{"target", "\tlist target 'not-an-address'\n"},
	} {
		// The bad line goes at the end of the tracker section, after
		// the good ones: its line number is the file's last line.
		conf := strings.ReplaceAll(good+bad.line, "@SOCK@", r1.sock())
		line := strings.Count(conf, "\n")
		if err := os.WriteFile(r1.conf(), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		reloads := c.status(r1).Reloads
		before, _ := c.view(r1).tracker("lan_ping")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := r1.host.Run(ctx, carpdBin, "reload", "-s", r1.sock())
		cancel()
		if err == nil {
			t.Fatalf("option %s: reload accepted %q:\n%s", bad.option, strings.TrimSpace(bad.line), out)
		}
		msg := err.Error()
		// FILE:LINE: track 'NAME': option X (the option's name quoted
		// or not).
		want := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("%s:%d: track 'lan_ping': option ", r1.conf(), line)) +
			"'?" + bad.option + "'?:")
		if !want.MatchString(msg) {
			t.Errorf("option %s: reload error %q, want it to match %s", bad.option, msg, want)
		}
		if st := c.status(r1); st.Reloads != reloads {
			t.Errorf("option %s: reloads %d → %d", bad.option, reloads, st.Reloads)
		}
		c.waitFor(3*time.Second, "the tracker still probing", func() bool {
			tr, ok := c.view(r1).tracker("lan_ping")
			return ok && tr.State == "up" && tr.Rounds >= before.Rounds+2
		})
	}
	if s := c.state(r1, "lan", 1); s != "MASTER" {
		t.Fatalf("r1 is %s after the refused reloads", s)
	}
}

// TestSplitBrainHealNeighbour: the LAN is partitioned between the routers
// (the client still reaches both): both become master of the LAN vhid and,
// with the sync link up, the split brain is reported. When the partition
// heals, r2 yields and r1, which stays master, announces the VIP at once:
// the client's neighbour entry for the VIP points at r1 within one advert
// interval (1 s) of the heal.
func TestSplitBrainHealNeighbour(t *testing.T) {
	tl := newTrackLab(t)
	c := tl.cluster
	r1, r2 := c.routers[0], c.routers[1]
	tl.establish(true)
	p, err := c.client.StartProbe(mustAddr("10.0.1.1"), 100*time.Millisecond, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	l1, err := r1.host.LinkState("lan")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := r2.host.LinkState("lan")
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(3*time.Second, "the client's entry for the VIP at r1", func() bool {
		mac, _, _ := c.client.Neigh("lan", "10.0.1.1")
		return mac == l1.MAC
	})

	// Partition: the LAN switch drops every frame between r1's and r2's
	// ports.
	a, b := r1.links["lan"].Port, r2.links["lan"].Port
	rules := fmt.Sprintf("table bridge part {\n\tchain cut {\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tiifname %q oifname %q drop\n\t\tiifname %q oifname %q drop\n\t}\n}\n", a, b, b, a)
	file := tl.dir + "/part.nft"
	if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	sw := c.sws["lan"]
	nft := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := runIn(ctx, sw.NS, append([]string{"nft"}, args...)...); err != nil {
			t.Fatalf("nft %v in the lan switch: %v\n%s", args, err, out)
		}
	}
	nft("-f", file)
	c.waitState(r2, "lan", 1, "MASTER", masterDown+2*time.Second)
	if s := c.state(r1, "lan", 1); s != "MASTER" {
		t.Fatalf("r1 lan vhid %s during the partition", s)
	}
	c.waitFor(2*time.Second, "the client's entry for the VIP at r2 (its gratuitous ARP)", func() bool {
		mac, _, _ := c.client.Neigh("lan", "10.0.1.1")
		return mac == l2.MAC
	})
	// Two masters for longer than master-down, the sync link up: alarm.
	c.waitFor(masterDown+3*time.Second, "a split-brain alarm", func() bool {
		for _, r := range []*router{r1, r2} {
			v := c.view(r)
			if v.SplitBrainAlarms >= 1 && len(v.SplitBrain) >= 1 && v.SplitBrain[0].Interface == "lan" && v.SplitBrain[0].VHID == 1 {
				return true
			}
		}
		return false
	})

	heal := time.Now()
	nft("delete", "table", "bridge", "part")
	var healedAt time.Duration
	c.waitFor(3*time.Second, "the client's entry for the VIP back at r1", func() bool {
		mac, _, _ := c.client.Neigh("lan", "10.0.1.1")
		if mac == l1.MAC {
			healedAt = time.Since(heal)
			return true
		}
		return false
	})
	t.Logf("the client's entry for the VIP at r1 again %v after the heal", healedAt.Round(time.Millisecond))
	// One advert interval (advbase 1) plus the 20 ms polling.
	if healedAt > time.Second+100*time.Millisecond {
		t.Errorf("the client's entry followed only after %v, over one advert interval", healedAt)
	}
	c.waitState(r2, "lan", 1, "BACKUP", 2*time.Second)
	if s := c.state(r1, "lan", 1); s != "MASTER" {
		t.Fatalf("r1 lan vhid %s after the heal", s)
	}
	c.onlyHolder(r1, "lan", vip4)
	c.waitFor(3*time.Second, "the split brain cleared", func() bool {
		return len(c.view(r1).SplitBrain) == 0 && len(c.view(r2).SplitBrain) == 0
	})
}

// TestTrackTypesDemoteAndRecover: a file, a script, a process and an
// interface (carrier) tracker on the master each demote it when their
// check fails (the backup takes over) and recover when it passes again
// (the master takes the VIP back, preempt on).
func TestTrackTypesDemoteAndRecover(t *testing.T) {
	c := newCluster(t, 2, segment{name: "lan", prefix: "10.0.1", n: 1}, segment{name: "aux", prefix: "10.0.5", n: 5})
	r1, r2 := c.routers[0], c.routers[1]
	file := r1.dir + "/demote"
	ok := r1.dir + "/ok"
	// A copy of sleep under a name of this test binary's own (its comm),
	// so that a parallel run's copy does not count.
	procName := fmt.Sprintf("trk%d", os.Getpid())
	proc := r1.dir + "/" + procName
	for _, f := range []struct {
		path string
		mode os.FileMode
		from string
	}{{ok, 0o644, ""}, {proc, 0o755, "/bin/sleep"}} {
		var b []byte
		if f.from != "" {
			var err error
			if b, err = os.ReadFile(f.from); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(f.path, b, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	var running *lab.Proc // the process the tracker looks for, killed by its pid
	startProc := func() {
		t.Helper()
		p, err := r1.host.Start(proc, "600")
		if err != nil {
			t.Fatal(err)
		}
		running = p
	}
	startProc()
	fast := []string{"option interval '0.2'", "option down '2'", "option up '2'"}
	tracker := func(name, typ string, opts ...string) string {
		s := fmt.Sprintf("config track '%s'\n\toption type '%s'\n", name, typ)
		for _, o := range append(opts, fast...) {
			s += "\t" + o + "\n"
		}
		return s + "\n"
	}
	conf := confText(true, lanVHID(0)) +
		tracker("t_file", "file", fmt.Sprintf("option path '%s'", file)) +
		tracker("t_script", "script", fmt.Sprintf("option command '/usr/bin/test -e %s'", ok)) +
		tracker("t_process", "process", fmt.Sprintf("option name '%s'", procName)) +
		tracker("t_iface", "interface", "option device 'aux'")
	c.start(r1, conf)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, confText(true, lanVHID(100)))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "r1's four trackers up", func() bool {
		v := c.view(r1)
		n := 0
		for _, tr := range v.Trackers {
			if tr.State == "up" {
				n++
			}
		}
		return n == 4
	})
	for _, tc := range []struct {
		name, typ  string
		value      int
		fail, heal func()
	}{
		{"t_file", "file", 2,
			func() { writeFile(t, file, "2\n") }, func() { writeFile(t, file, "0\n") }},
		{"t_script", "script", 1,
			func() { os.Remove(ok) }, func() { writeFile(t, ok, "") }},
		{"t_process", "process", 1,
			func() { running.Kill(); _ = running.Wait(5 * time.Second) }, startProc},
		{"t_iface", "interface", 1,
			func() { r1.links["aux"].SetUp(false) }, func() { r1.links["aux"].SetUp(true) }},
	} {
		tc.fail()
		c.waitState(r2, "lan", 1, "MASTER", 4*time.Second)
		v := c.view(r1)
		tr, _ := v.tracker(tc.name)
		if tr.State != "down" || tr.Type != tc.typ || tr.Value != tc.value || tr.Reason == "" {
			t.Errorf("%s after its check failed: %+v", tc.name, tr)
		}
		if lv := v.vhid("lan", 1); lv.Demotion != tc.value || !hasSource(lv.DemotionSources, "carp", tc.name, tc.value) {
			t.Errorf("%s: r1 lan vhid demotion %d, sources %+v", tc.name, lv.Demotion, lv.DemotionSources)
		}
		t.Logf("%s down: %s", tc.name, tr.Reason)
		tc.heal()
		c.waitState(r1, "lan", 1, "MASTER", 5*time.Second)
		c.waitFor(2*time.Second, tc.name+" up again", func() bool {
			tr, _ := c.view(r1).tracker(tc.name)
			return tr.State == "up" && tr.Value == 0
		})
		c.onlyHolder(r1, "lan", vip4)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrackUbus: over ubus (the fake ubusd of ubus/ubustest), `demote
// {group, source, set, ttl}` sets a named source that expires by itself,
// and a tracker's changes are `carp.track` events with the contract's
// fields.
func TestTrackUbus(t *testing.T) {
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	sock, srv := fakeUbusd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli, evs := listenEvents(t, ctx, sock, "carp.track")
	file := filepath.Join(r1.dir, "demote")
	conf := strings.Replace(confText(true, lanVHID(0)), "option log_level", "option ubus_socket '"+sock+"'\n\toption log_level", 1) +
		fmt.Sprintf("config track 'maint'\n\toption type 'file'\n\toption path '%s'\n\toption interval '0.2'\n\toption down '2'\n\toption up '2'\n\toption group 'carp'\n", file)
	c.start(r1, conf)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, confText(true, lanVHID(100)))
	c.waitHearing(r2, "lan", 1, 3*time.Second)
	c.waitFor(5*time.Second, "carpd object on ubus", func() bool {
		for _, o := range srv.Objects() {
			if o == "carpd" {
				return true
			}
		}
		return false
	})

	set := time.Now()
	if _, err := cli.Call(ctx, "carpd", "demote", json.RawMessage(`{"group":"carp","source":"bird","set":3,"ttl":2,"ubus_rpc_session":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if lv := c.view(r1).vhid("lan", 1); lv.Demotion != 3 || !hasSource(lv.DemotionSources, "carp", "bird", 3) {
		t.Fatalf("after ubus demote: demotion %d, sources %+v", lv.Demotion, lv.DemotionSources)
	}
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	c.waitFor(4*time.Second, "the ubus source expiring", func() bool { return c.view(r1).vhid("lan", 1).Demotion == 0 })
	if gone := time.Since(set); gone < 2*time.Second-100*time.Millisecond {
		t.Errorf("the ubus source went after %v, before its ttl of 2 s", gone)
	}
	c.waitState(r1, "lan", 1, "MASTER", 4*time.Second)

	// The file tracker down and up again: two carp.track events.
	writeFile(t, file, "5\n")
	c.waitState(r2, "lan", 1, "MASTER", 3*time.Second)
	writeFile(t, file, "0\n")
	c.waitState(r1, "lan", 1, "MASTER", 4*time.Second)
	c.waitFor(3*time.Second, "carp.track down and up events", func() bool {
		var down, up bool
		for _, e := range evs.all() {
			if e["name"] != "maint" || e["type"] != "file" || e["group"] != "carp" || e["reason"] == "" || e["time"] == nil {
				continue
			}
			down = down || (e["state"] == "down" && e["value"] == float64(5))
			up = up || (e["state"] == "up" && e["value"] == float64(0))
		}
		return down && up
	})
	t.Logf("carp.track events: %v", evs.all())
}
