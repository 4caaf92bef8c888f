package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/carpd/carpd/internal/carp"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/rawsock"
)

// ethPIPv4 is the EtherType of IPv4 (ETH_P_IP), spelled out because this
// package is also vetted for FreeBSD, where x/sys/unix lacks the name.
const ethPIPv4 = 0x0800

// An attacker on the LAN without the password: it captures adverts from the
// wire through an AF_PACKET socket and sends frames of its own, the way a
// compromised host on the segment would (docs/carp-authentication.md).

// attacker is a host on lan with a raw AF_PACKET socket.
type attacker struct {
	host *lab.Host
	conn *rawsock.Conn
	mac  net.HardwareAddr
}

func (c *cluster) addAttacker() *attacker {
	c.t.Helper()
	h, err := c.lab.Host("atk")
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.lab.Attach(h, c.sws["lan"], "lan", "10.0.1.66/24"); err != nil {
		c.t.Fatal(err)
	}
	a := &attacker{host: h}
	// A socket opened inside the namespace stays in it.
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName("lan")
		if err != nil {
			return err
		}
		a.mac = ifi.HardwareAddr
		a.conn, err = rawsock.Listen(ifi, ethPIPv4, nil)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { a.conn.Close() })
	return a
}

// capture returns the first CARP frame (Ethernet, IPv4) from src for vhid.
func (a *attacker) capture(t *testing.T, src string, vhid uint8, d time.Duration) []byte {
	t.Helper()
	want := netip.MustParseAddr(src).As4()
	deadline := time.Now().Add(d)
	_ = a.conn.SetReadDeadline(deadline)
	defer a.conn.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		n, _, err := a.conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		f := buf[:n]
		if n != 14+20+carp.HeaderLen || f[14+9] != carp.IPProto || [4]byte(f[14+12:14+16]) != want || f[14+20+1] != vhid {
			continue
		}
		return append([]byte(nil), f...)
	}
	t.Fatalf("no advert from %s captured in %v", src, d)
	return nil
}

func (a *attacker) send(t *testing.T, frame []byte) {
	t.Helper()
	if _, err := a.conn.WriteTo(frame, &rawsock.Addr{HardwareAddr: net.HardwareAddr(frame[:6])}); err != nil {
		t.Fatalf("attacker send: %v", err)
	}
}

// rewrite returns a copy of a captured frame with new clear timing and the
// CARP checksum fixed up; the counter and HMAC stay as captured, so the
// HMAC still verifies (it does not cover these fields).
func rewrite(frame []byte, advbase, advskew, demote uint8) []byte {
	f := append([]byte(nil), frame...)
	p := f[14+20:]
	p[2], p[4], p[5] = advskew, demote, advbase
	p[6], p[7] = 0, 0
	binary.BigEndian.PutUint16(p[6:], carp.Checksum(p))
	return f
}

// ipv4Frame wraps a CARP payload into an Ethernet/IPv4 multicast frame
// from the attacker.
func (a *attacker) ipv4Frame(src netip.Addr, ttl uint8, payload []byte) []byte {
	f := append([]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}, a.mac...)
	f = binary.BigEndian.AppendUint16(f, ethPIPv4)
	h := []byte{0x45, 0x10, 0, 0, 0, 0, 0x40, 0, ttl, carp.IPProto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h = append(h, src.AsSlice()...)
	h = append(h, 224, 0, 0, 18)
	binary.BigEndian.PutUint16(h[10:], carp.Checksum(h))
	f = append(f, h...)
	return append(f, payload...)
}

// vhidCounters are the counters of one vhid, read from the status JSON as
// a map so that any counter carpd reports is seen by name.
type vhidCounters struct {
	State    string
	Counters map[string]uint64
	Drops    map[string]uint64 // the interface's
}

func (c *cluster) counters(r *router, iface string, vhid uint8) vhidCounters {
	c.t.Helper()
	raw, err := daemon.Call(r.sock(), daemon.Request{Method: "status"})
	if err != nil {
		c.t.Fatalf("%s status: %v", r.name, err)
	}
	var st struct {
		VHIDs []struct {
			Interface string
			VHID      uint8
			State     string
			Counters  map[string]uint64
		} `json:"vhids"`
		Interfaces []struct {
			Name  string
			Drops map[string]uint64
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		c.t.Fatal(err)
	}
	var out vhidCounters
	for _, v := range st.VHIDs {
		if v.Interface == iface && v.VHID == vhid {
			out.State, out.Counters = v.State, v.Counters
		}
	}
	for _, i := range st.Interfaces {
		if i.Name == iface {
			out.Drops = i.Drops
		}
	}
	if out.Counters == nil {
		c.t.Fatalf("%s: no %s vhid %d in status: %s", r.name, iface, vhid, raw)
	}
	return out
}

// arpResolvesTo checks that the client, after forgetting the VIP's
// neighbour entry, resolves it to r's MAC.
func (c *cluster) arpResolvesTo(r *router, vip string) {
	c.t.Helper()
	c.run(c.client, "ip", "neigh", "flush", "dev", "lan", "to", vip)
	c.waitClientReaches(vip, 3*time.Second)
	mac, _, err := c.client.Neigh("lan", vip)
	if err != nil {
		c.t.Fatal(err)
	}
	ls, err := r.host.LinkState("lan")
	if err != nil {
		c.t.Fatal(err)
	}
	if mac != ls.MAC {
		c.t.Fatalf("client resolves %s to %s, want %s's %s", vip, mac, r.name, ls.MAC)
	}
}

// TestReplayRefused: a LAN host without the password captures a real
// advert of the master and replays it with rewritten timing (bow-out,
// "demoted", "slower") and unmodified, while both routers run and again
// after the master stopped. Neither router changes state, every replay is
// counted under its reason, and the client's ARP entry for the VIP keeps
// pointing at the real master. The old code took the bow-out replay as a
// real one (the backup took over at once), and after the master stopped it
// let the unmodified old advert push the new master into BACKUP: a VIP
// outage for as long as the attacker repeats it.
func TestReplayRefused(t *testing.T) {
	c, r1, r2 := twoRouters(t, true)
	atk := c.addAttacker()
	captured := atk.capture(t, "10.0.1.2", 1, 3*time.Second)
	// Let some adverts go by so the capture is not the latest one.
	time.Sleep(1500 * time.Millisecond)
	before1, before2 := c.counters(r1, "lan", 1), c.counters(r2, "lan", 1)

	rewritten := [][3]uint8{
		{carp.BowOutAdvBase, carp.BowOutAdvSkew, 0}, // "the master bows out": take over now
		{1, 255, 0}, // a master slower than the backup: preempt it
		{1, 0, 255}, // a demoted master: preempt it
		{10, 0, 0},  // a slow master: the backup waits 30 s to notice it died
		{0, 1, 0},   // a faster master
	}
	for round := 0; round < 3; round++ {
		for _, tm := range rewritten {
			atk.send(t, rewrite(captured, tm[0], tm[1], tm[2]))
			time.Sleep(100 * time.Millisecond)
		}
		atk.send(t, captured) // unmodified, and old by now
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	after1, after2 := c.counters(r1, "lan", 1), c.counters(r2, "lan", 1)
	if after1.State != "MASTER" || after2.State != "BACKUP" ||
		after1.Counters["transitions"] != before1.Counters["transitions"] ||
		after2.Counters["transitions"] != before2.Counters["transitions"] {
		t.Fatalf("replays moved the routers: r1 %s %v -> %v, r2 %s %v -> %v", after1.State,
			before1.Counters, after1.Counters, after2.State, before2.Counters, after2.Counters)
	}
	if n := after2.Counters["timing_mismatch"] - before2.Counters["timing_mismatch"]; n != 3*uint64(len(rewritten)) {
		t.Errorf("r2 counted %d rewritten replays, want %d: %v", n, 3*len(rewritten), after2.Counters)
	}
	if n := after2.Counters["stale_sequence"] - before2.Counters["stale_sequence"]; n != 3 {
		t.Errorf("r2 counted %d stale replays, want 3: %v", n, after2.Counters)
	}
	c.onlyHolder(r1, "lan", vip4)
	c.arpResolvesTo(r1, "10.0.1.1")
	t.Logf("r2 after the replays: %v", after2.Counters)

	// The master stops; r2 takes over. The attacker now replays the old
	// advert of r1, which r2 must not take for a live master.
	c.stop(r1)
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	before2 = c.counters(r2, "lan", 1)
	for i := 0; i < 8; i++ {
		atk.send(t, captured)
		atk.send(t, rewrite(captured, 0, 1, 0))
		time.Sleep(500 * time.Millisecond)
	}
	after2 = c.counters(r2, "lan", 1)
	if after2.State != "MASTER" || after2.Counters["transitions"] != before2.Counters["transitions"] {
		t.Fatalf("old adverts of the stopped master moved r2: %s, %v -> %v", after2.State, before2.Counters, after2.Counters)
	}
	if n := after2.Counters["stale_sequence"] - before2.Counters["stale_sequence"]; n != 8 {
		t.Errorf("r2 counted %d stale replays of the stopped master, want 8", n)
	}
	if n := after2.Counters["timing_mismatch"] - before2.Counters["timing_mismatch"]; n != 8 {
		t.Errorf("r2 counted %d rewritten replays of the stopped master, want 8", n)
	}
	c.onlyHolder(r2, "lan", vip4)
	c.arpResolvesTo(r2, "10.0.1.1")

	// r1 comes back: its new adverts continue above the old sequence, so
	// r2 hears it and r1 preempts as before.
	c.start(r1, confText(true, lanVHID(0)))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.waitState(r2, "lan", 1, "BACKUP", 2*time.Second)
	c.onlyHolder(r1, "lan", vip4)
	c.arpResolvesTo(r1, "10.0.1.1")
	// The pre-restart capture is still refused.
	before2 = c.counters(r2, "lan", 1)
	atk.send(t, rewrite(captured, carp.BowOutAdvBase, carp.BowOutAdvSkew, 0))
	atk.send(t, captured)
	time.Sleep(3 * time.Second)
	after2 = c.counters(r2, "lan", 1)
	if after2.State != "BACKUP" || after2.Counters["transitions"] != before2.Counters["transitions"] {
		t.Fatalf("pre-restart capture moved r2: %v -> %v", before2.Counters, after2.Counters)
	}
}

// flood sends frames round-robin from the attacker for d at about rate
// frames per second, and returns how many went out. The rate is held
// below what the kernel can hand to carpd's (race-instrumented) reader on
// a loaded test machine: above that the kernel's socket buffer drops
// packets at random, real adverts included, which no user-space check can
// prevent (docs/carp-authentication.md).
func (a *attacker) flood(t *testing.T, frames [][]byte, d time.Duration, rate int) int {
	t.Helper()
	const tick = 10 * time.Millisecond
	perTick := rate * int(tick) / int(time.Second)
	sent := 0
	start := time.Now()
	for next := start; time.Since(start) < d && sent < rate*int(d/time.Second)+perTick; next = next.Add(tick) {
		for i := 0; i < perTick; i++ {
			f := frames[sent%len(frames)]
			if _, err := a.conn.WriteTo(f, &rawsock.Addr{HardwareAddr: net.HardwareAddr(f[:6])}); err != nil {
				if errors.Is(err, unix.ENOBUFS) {
					break
				}
				t.Fatal(err)
			}
			sent++
		}
		time.Sleep(time.Until(next.Add(tick)))
	}
	took := time.Since(start)
	t.Logf("flooded %d frames in %v (%.0f/s)", sent, took.Round(time.Millisecond), float64(sent)/took.Seconds())
	return sent
}

// noFlap checks that r1 is still MASTER and r2 BACKUP with the transition
// counts of before, and returns r2's counters.
func (c *cluster) noFlap(what string, r1, r2 *router, before1, before2 vhidCounters) vhidCounters {
	c.t.Helper()
	after1, after2 := c.counters(r1, "lan", 1), c.counters(r2, "lan", 1)
	c.t.Logf("r2 after %s: %v, interface drops %v", what, after2.Counters, after2.Drops)
	if after1.State != "MASTER" || after2.State != "BACKUP" ||
		after1.Counters["transitions"] != before1.Counters["transitions"] ||
		after2.Counters["transitions"] != before2.Counters["transitions"] {
		c.t.Fatalf("%s caused flaps: r1 %s %d -> %d transitions, r2 %s %d -> %d", what, after1.State,
			before1.Counters["transitions"], after1.Counters["transitions"], after2.State,
			before2.Counters["transitions"], after2.Counters["transitions"])
	}
	if n := after2.Counters["queue_overflow"]; n != 0 {
		c.t.Errorf("r2's queue overflowed %d times", n)
	}
	// r1 advertises once per second: r2 must have heard nearly all of
	// them (the flood lasts 4 s, the wait after it 2 s).
	if n := after2.Counters["adverts_received"] - before2.Counters["adverts_received"]; n < 5 {
		c.t.Errorf("r2 heard %d adverts of r1 over %s, want at least 5", n, what)
	}
	return after2
}

// TestJunkFloodNoFlap: a LAN host floods the CARP group for a few seconds
// with junk (bad checksum, an unknown vhid, a wrong HMAC, a bad TTL), then
// with replays of a captured advert (authentic HMAC, old sequence or
// rewritten timing), while two routers run with log_level debug. All of it
// is counted and dropped before it reaches a vhost's queue, so the routers
// keep hearing each other: no transition. The old code queued everything
// (64 slots), published status and wrote a debug line per dropped packet;
// the backup lost enough real adverts to take over, again and again.
func TestJunkFloodNoFlap(t *testing.T) {
	// Frames per second: 80,000 in 4 s, 40 times what a router with 1 s
	// adverts gets in a year of operation on one vhid.
	const floodRate = 20_000
	c, r1, r2 := twoRouters(t, false)
	atk := c.addAttacker()
	captured := atk.capture(t, "10.0.1.2", 1, 3*time.Second)
	before1, before2 := c.counters(r1, "lan", 1), c.counters(r2, "lan", 1)

	src := netip.MustParseAddr("10.0.1.66")
	junkAdvert := func(vhid uint8) []byte {
		a := carp.Advert{Version: 2, Type: 1, VHID: vhid, AuthLen: 7, AdvBase: 1}
		var b [8]byte
		_, _ = rand.Read(b[:])
		a.Counter = binary.BigEndian.Uint64(b[:])
		_, _ = rand.Read(a.HMAC[:])
		p, _ := a.MarshalBinary()
		return p
	}
	badSum := junkAdvert(1)
	badSum[7] ^= 0x55
	atk.flood(t, [][]byte{
		atk.ipv4Frame(src, 255, badSum),         // bad checksum
		atk.ipv4Frame(src, 255, junkAdvert(99)), // unknown vhid
		atk.ipv4Frame(src, 255, junkAdvert(1)),  // wrong HMAC
		atk.ipv4Frame(src, 64, junkAdvert(1)),   // bad TTL
	}, 4*time.Second, floodRate)
	time.Sleep(2 * time.Second)
	after2 := c.noFlap("the junk flood", r1, r2, before1, before2)
	for _, k := range []string{"bad_checksum", "bad_hmac", "bad_ttl"} {
		if after2.Counters[k] == before2.Counters[k] {
			t.Errorf("r2 counted no %s: %v", k, after2.Counters)
		}
	}
	if after2.Drops["unknown_vhid"] == before2.Drops["unknown_vhid"] {
		t.Errorf("r2 counted no unknown vhid: %v", after2.Drops)
	}

	before1, before2 = c.counters(r1, "lan", 1), after2
	atk.flood(t, [][]byte{rewrite(captured, 1, 0, 200), captured}, 4*time.Second, floodRate)
	time.Sleep(2 * time.Second)
	after2 = c.noFlap("the replay flood", r1, r2, before1, before2)
	for _, k := range []string{"timing_mismatch", "stale_sequence"} {
		if after2.Counters[k] == before2.Counters[k] {
			t.Errorf("r2 counted no %s: %v", k, after2.Counters)
		}
	}
	c.onlyHolder(r1, "lan", vip4)
}

// TestInteropUcarpCopiesCarpdCounter: ucarp, like FreeBSD, copies the last
// counter it heard and adds one. A ucarp with preempt and a lower skew
// joins a running carpd master: it hears carpd's adverts, takes over, and
// from then on sends carpd's counter (marker, carpd's timing, sequence)
// plus one, from its own address. carpd must take those as the BSD-format
// adverts they are, yield, and count none of them as a replay or
// downgrade; and when ucarp dies carpd takes over again.
func TestInteropUcarpCopiesCarpdCounter(t *testing.T) {
	ucarp := requireTool(t, "ucarp")
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	c.start(r1, confText(false, lanVHID(100)))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	atk := c.addAttacker()
	carpdAdvert := atk.capture(t, "10.0.1.2", 1, 3*time.Second)

	c.startUcarp(ucarp, r2, ucarpConf{srcip: "10.0.1.3", advbase: 1, advskew: 0, preempt: true})
	c.waitLanAddr(r2, vip4, true, 10*time.Second)
	c.waitState(r1, "lan", 1, "BACKUP", 5*time.Second)
	ucarpAdvert := atk.capture(t, "10.0.1.3", 1, 3*time.Second)
	// The premise: ucarp's counter is a copy of carpd's.
	if got, want := ucarpAdvert[14+20+8:14+20+10], carpdAdvert[14+20+8:14+20+10]; string(got) != string(want) {
		t.Fatalf("ucarp's counter %x does not carry carpd's marker %x", ucarpAdvert[14+20+8:14+20+16], want)
	}
	time.Sleep(5 * time.Second)
	st := c.counters(r1, "lan", 1)
	if st.State != "BACKUP" || st.Counters["adverts_received"] < 4 || st.Counters["stale_sequence"] != 0 ||
		st.Counters["timing_mismatch"] != 0 || st.Counters["format_downgrade"] != 0 || st.Counters["bad_hmac"] != 0 {
		t.Fatalf("carpd under a ucarp master that copies its counter: %s %v", st.State, st.Counters)
	}
	c.onlyHolder(r2, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 3*time.Second)

	c.crash(r2)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.onlyHolder(r1, "lan", vip4)
	c.waitClientReaches("10.0.1.1", 5*time.Second)
}
