package vip

// Integration tests against the real kernel, each in a fresh lab of network
// namespaces (package lab): a router "r1" and a client on one switch. They
// need root; lab.Require skips them without it, or fails them when
// CARPD_REQUIRE_NETNS=1. Nothing here touches the caller's namespace: every
// call that reaches the kernel runs inside r1.Do or through r1.Run.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/rawsock"
	"github.com/carpd/carpd/ubus/json"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Addresses of the test segment.
var (
	labV4   = netip.MustParsePrefix("192.0.2.10/24")
	labV6   = netip.MustParsePrefix("2001:db8::10/64")
	fakeMAC = "02:00:00:00:00:99" // the client's stale idea of the VIP's owner
)

// testbed is one lab: router r1 and a client on switch lan, both on eth0.
type testbed struct {
	lab            *lab.Lab
	r1, client     *lab.Host
	r1Link         *lab.Link
	r1MAC          string
	log            *logx.Logger
	announcer      *Linux // for r1's eth0; call it inside r1.Do
	ctx            context.Context
	cancelTimeouts context.CancelFunc
}

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	lab.Require(t)
	l, err := lab.New("vipt")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("lan")
	if err != nil {
		t.Fatal(err)
	}
	tb := &testbed{lab: l, log: testLogger(t)}
	if tb.r1, err = l.Host("r1"); err != nil {
		t.Fatal(err)
	}
	if tb.client, err = l.Host("client"); err != nil {
		t.Fatal(err)
	}
	if tb.r1Link, err = l.Attach(tb.r1, sw, "eth0", "192.0.2.1/24", "2001:db8::1/64"); err != nil {
		t.Fatal(err)
	}
	if _, err = l.Attach(tb.client, sw, "eth0", "192.0.2.2/24", "2001:db8::2/64"); err != nil {
		t.Fatal(err)
	}
	st, err := tb.r1.LinkState("eth0")
	if err != nil {
		t.Fatal(err)
	}
	tb.r1MAC = st.MAC
	if tb.announcer, err = New("eth0", tb.log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.announcer.Close() })
	tb.ctx, tb.cancelTimeouts = context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(tb.cancelTimeouts)
	return tb
}

// testLogger logs at debug level into the test's output.
func testLogger(t *testing.T) *logx.Logger {
	return logx.New(logx.NewTextHandler(t.Output(), &logx.HandlerOptions{Level: logx.LevelDebug}))
}

// inR1 runs fn in r1's namespace and fails the test on error.
func (tb *testbed) inR1(t *testing.T, what string, fn func() error) {
	t.Helper()
	if err := tb.r1.Do(fn); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// ipAddr is one entry of `ip -j addr show`'s addr_info.
type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Broadcast string `json:"broadcast"`
	NoDAD     bool   `json:"nodad"`
	Tentative bool   `json:"tentative"`
	DADFailed bool   `json:"dadfailed"`
}

// addrs returns what `ip -j addr show dev ifname` shows in h, by "addr/len".
func addrs(t *testing.T, h *lab.Host, ifname string) map[string]ipAddr {
	t.Helper()
	out, err := h.Run(context.Background(), "ip", "-j", "addr", "show", "dev", ifname)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	m := make(map[string]ipAddr)
	for _, l := range links {
		for _, a := range l.AddrInfo {
			m[fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)] = a
		}
	}
	return m
}

// eventually polls cond every 20 ms for at most 5 s (a bounded loop) and
// fails with cond's last description if it never holds.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for range 250 {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: gave up after 5 s; last: %s", what, last)
}

func TestLinuxAddRemove(t *testing.T) {
	tb := newTestbed(t)
	ctx := tb.ctx
	// DAD on for r1's eth0 (the lab turns it off by default), so that an
	// IPv6 address added without IFA_F_NODAD would show as tentative.
	if err := tb.r1.Sysctl("net/ipv6/conf/eth0/accept_dad", "1"); err != nil {
		t.Fatal(err)
	}
	vips := []netip.Prefix{labV4, labV6}
	a := tb.announcer

	for i := range 2 { // the second Add must be a no-op, not EEXIST
		tb.inR1(t, fmt.Sprintf("add #%d", i+1), func() error { return a.Add(ctx, vips) })
	}
	got := addrs(t, tb.r1, "eth0")
	v4, ok := got[labV4.String()]
	if !ok {
		t.Fatalf("%v missing after Add: %v", labV4, got)
	}
	if v4.Broadcast != "192.0.2.255" {
		t.Errorf("%v broadcast = %q", labV4, v4.Broadcast)
	}
	v6, ok := got[labV6.String()]
	if !ok {
		t.Fatalf("%v missing after Add: %v", labV6, got)
	}
	if !v6.NoDAD || v6.Tentative || v6.DADFailed {
		t.Errorf("%v: nodad=%v tentative=%v dadfailed=%v, want nodad only", labV6, v6.NoDAD, v6.Tentative, v6.DADFailed)
	}
	for _, p := range vips {
		var has bool
		tb.inR1(t, "has", func() (err error) { has, err = a.Has(ctx, p); return err })
		if !has {
			t.Errorf("Has(%v) = false after Add", p)
		}
	}
	// Has is exact about the prefix length, as Remove is.
	var has bool
	tb.inR1(t, "has /32", func() (err error) {
		has, err = a.Has(ctx, netip.PrefixFrom(labV4.Addr(), 32))
		return err
	})
	if has {
		t.Error("Has(192.0.2.10/32) = true, but it was added as /24")
	}

	for i := range 2 { // removing what is absent is fine
		tb.inR1(t, fmt.Sprintf("remove #%d", i+1), func() error { return a.Remove(ctx, vips) })
	}
	got = addrs(t, tb.r1, "eth0")
	for _, p := range vips {
		if _, ok := got[p.String()]; ok {
			t.Errorf("%v still there after Remove: %v", p, got)
		}
		tb.inR1(t, "has", func() (err error) { has, err = a.Has(ctx, p); return err })
		if has {
			t.Errorf("Has(%v) = true after Remove", p)
		}
	}
	// The lab's own addresses are untouched.
	for _, s := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
		if _, ok := got[s]; !ok {
			t.Errorf("%s gone: %v", s, got)
		}
	}
}

// TestLinuxRecreatedInterface checks that the name is resolved at each call:
// the interface may be deleted and re-created with a new index.
func TestLinuxRecreatedInterface(t *testing.T) {
	tb := newTestbed(t)
	ctx := tb.ctx
	mk := func() {
		t.Helper()
		for _, args := range [][]string{
			{"ip", "link", "add", "vip0", "type", "veth", "peer", "name", "vip1"},
			{"ip", "link", "set", "vip0", "up"},
			{"ip", "link", "set", "vip1", "up"},
		} {
			if _, err := tb.r1.Run(ctx, args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk()
	a, err := New("vip0", tb.log)
	if err != nil {
		t.Fatal(err)
	}
	p := []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24")}
	tb.inR1(t, "add", func() error { return a.Add(ctx, p) })

	if _, err := tb.r1.Run(ctx, "ip", "link", "del", "vip0"); err != nil {
		t.Fatal(err)
	}
	tb.inR1(t, "while gone", func() error {
		if err := a.Add(ctx, p); !errors.Is(err, ErrNoInterface) {
			return fmt.Errorf("Add on a deleted interface = %v, want ErrNoInterface", err)
		}
		if err := a.Remove(ctx, p); err != nil {
			return fmt.Errorf("Remove on a deleted interface = %v, want nil", err)
		}
		if up, err := LinkUp("vip0"); up || !errors.Is(err, ErrNoInterface) {
			return fmt.Errorf("LinkUp on a deleted interface = %v, %v", up, err)
		}
		return nil
	})

	mk()
	tb.inR1(t, "after re-creation", func() error {
		if err := a.Add(ctx, p); err != nil {
			return err
		}
		if has, err := a.Has(ctx, p[0]); err != nil || !has {
			return fmt.Errorf("Has = %v, %v", has, err)
		}
		return a.Announce(ctx, []netip.Addr{p[0].Addr()})
	})
}

// setStaleNeighbor gives the client an entry for ip pointing at fakeMAC.
func (tb *testbed) setStaleNeighbor(t *testing.T, ip netip.Addr) {
	t.Helper()
	if _, err := tb.client.Run(tb.ctx, "ip", "neigh", "replace", ip.String(), "dev", "eth0",
		"lladdr", fakeMAC, "nud", "stale"); err != nil {
		t.Fatal(err)
	}
	if mac, _, err := tb.client.Neigh("eth0", ip.String()); err != nil || mac != fakeMAC {
		t.Fatalf("client neighbour for %v = %q, %v; want %s", ip, mac, err, fakeMAC)
	}
}

// waitNeighbor waits until the client's entry for ip names r1's MAC.
func (tb *testbed) waitNeighbor(t *testing.T, ip netip.Addr) {
	t.Helper()
	eventually(t, "client learns "+ip.String(), func() (bool, string) {
		mac, state, err := tb.client.Neigh("eth0", ip.String())
		return err == nil && mac == tb.r1MAC, fmt.Sprintf("lladdr %q state %q err %v, want %s", mac, state, err, tb.r1MAC)
	})
}

// checkUnchanged waits 300 ms and checks that the client still has the fake
// MAC for ip: the controls that show the tests can fail.
func (tb *testbed) checkUnchanged(t *testing.T, ip netip.Addr, why string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if mac, state, err := tb.client.Neigh("eth0", ip.String()); err != nil || mac != fakeMAC {
		t.Errorf("%s: client has %q (%s, %v) for %v, want it unchanged (%s)", why, mac, state, err, ip, fakeMAC)
	}
}

// sendARP sends one ARP packet for ip from r1, built by mod from the
// announcement pair.
func (tb *testbed) sendARP(t *testing.T, ip netip.Addr, mod func(pair [2]arpPacket) arpPacket) {
	t.Helper()
	tb.inR1(t, "send ARP", func() error {
		ifi, err := tb.announcer.link(tb.ctx)
		if err != nil {
			return err
		}
		f, err := arpFrame(ifi.HardwareAddr, mod(gratuitousARP(ifi.HardwareAddr, ip)))
		if err != nil {
			return err
		}
		return tb.announcer.send(tb.ctx, ifi, etherTypeARP, [][]byte{f})
	})
}

func TestLinuxAnnounceIPv4(t *testing.T) {
	tb := newTestbed(t)
	ip := labV4.Addr()

	t.Run("control: Add alone tells nobody", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.inR1(t, "add", func() error { return tb.announcer.Add(tb.ctx, []netip.Prefix{labV4}) })
		tb.checkUnchanged(t, ip, "Add without Announce")
	})

	t.Run("burst", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.inR1(t, "announce", func() error {
			return tb.announcer.Announce(tb.ctx, []netip.Addr{ip})
		})
		tb.waitNeighbor(t, ip)
	})

	// Each half of the burst must work on its own. The entry was replaced
	// less than locktime (1 s) ago, so Linux only overrides it from an ARP
	// packet it deems gratuitous (arp_is_garp): any request with sender IP =
	// target IP, but a reply only if also ar_tha = ar_sha.
	t.Run("request alone", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.sendARP(t, ip, func(pair [2]arpPacket) arpPacket { return pair[0] })
		tb.waitNeighbor(t, ip)
	})
	t.Run("reply alone", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.sendARP(t, ip, func(pair [2]arpPacket) arpPacket { return pair[1] })
		tb.waitNeighbor(t, ip)
	})
	t.Run("control: reply to ff:ff:ff:ff:ff:ff is not gratuitous to Linux", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.sendARP(t, ip, func(pair [2]arpPacket) arpPacket {
			pair[1].TargetHardwareAddr = ethBroadcast
			return pair[1]
		})
		tb.checkUnchanged(t, ip, "reply with ar_tha ff:ff:ff:ff:ff:ff")
	})
}

func TestLinuxAnnounceIPv6(t *testing.T) {
	tb := newTestbed(t)
	ip := labV6.Addr()

	// routerFlag reports whether the client's entry carries NTF_ROUTER.
	routerFlag := func() bool {
		out, err := tb.client.Run(tb.ctx, "ip", "-j", "-6", "neigh", "show", "dev", "eth0", "to", ip.String())
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out, `"router"`)
	}

	t.Run("control: Add alone tells nobody", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.inR1(t, "add", func() error { return tb.announcer.Add(tb.ctx, []netip.Prefix{labV6}) })
		tb.checkUnchanged(t, ip, "Add without Announce")
	})

	t.Run("host", func(t *testing.T) {
		tb.setStaleNeighbor(t, ip)
		tb.inR1(t, "announce", func() error {
			return tb.announcer.Announce(tb.ctx, []netip.Addr{ip})
		})
		tb.waitNeighbor(t, ip)
		if routerFlag() {
			t.Error("client marks r1 as a router, but IPv6 forwarding is off")
		}
	})

	t.Run("router", func(t *testing.T) {
		if err := tb.r1.Sysctl("net/ipv6/conf/eth0/forwarding", "1"); err != nil {
			t.Fatal(err)
		}
		tb.setStaleNeighbor(t, ip)
		tb.inR1(t, "announce", func() error {
			return tb.announcer.Announce(tb.ctx, []netip.Addr{ip})
		})
		tb.waitNeighbor(t, ip)
		eventually(t, "router flag", func() (bool, string) {
			return routerFlag(), "no router flag on the client's entry"
		})
	})
}

// TestLinuxAnnounceOnTheWire captures the burst on the client with an
// AF_PACKET socket and decodes it: exactly the frames Announce documents,
// from r1's MAC, in order.
func TestLinuxAnnounceOnTheWire(t *testing.T) {
	tb := newTestbed(t)
	var sniffer *rawsock.Conn
	if err := tb.client.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		sniffer, err = rawsock.Listen(ifi, unix.ETH_P_ALL, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sniffer.Close()

	tb.inR1(t, "announce", func() error {
		return tb.announcer.Announce(tb.ctx, []netip.Addr{labV4.Addr(), labV6.Addr()})
	})

	mac, err := net.ParseMAC(tb.r1MAC)
	if err != nil {
		t.Fatal(err)
	}
	pair := gratuitousARP(mac, labV4.Addr())
	wantARP := pair[:]
	wantNA := []neighborAdvert{unsolicitedNA(mac, labV6.Addr(), false)}
	var gotARP []arpPacket
	var gotNA []neighborAdvert
	if err := sniffer.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	// Bounded: the read deadline ends the loop, and so does the count.
	for range 1000 {
		if len(gotARP) == len(wantARP) && len(gotNA) == len(wantNA) {
			break
		}
		n, _, err := sniffer.ReadFrom(buf)
		if err != nil {
			t.Fatalf("sniffer: %v (have %d ARP, %d NA)", err, len(gotARP), len(gotNA))
		}
		h, payload, err := parseEthernet(buf[:n])
		if err != nil || !bytes.Equal(h.Source, mac) {
			continue // not from r1 (the client's own MLD, router solicitations...)
		}
		switch h.EtherType {
		case etherTypeARP:
			var p arpPacket
			if err := p.UnmarshalBinary(payload); err != nil {
				t.Errorf("ARP from r1 does not decode: %v", err)
				continue
			}
			if !bytes.Equal(h.Destination, ethBroadcast) || n != ethMinLen {
				t.Errorf("ARP frame to %v, %d bytes", h.Destination, n)
			}
			gotARP = append(gotARP, p)
		case etherTypeIPv6:
			var na neighborAdvert
			if err := na.UnmarshalBinary(payload); err != nil {
				continue // other ICMPv6 from r1
			}
			if !bytes.Equal(h.Destination, ethAllNodes) {
				t.Errorf("NA frame to %v", h.Destination)
			}
			gotNA = append(gotNA, na)
		}
	}
	if diff := cmp.Diff(wantARP, gotARP, addrComparer); diff != "" {
		t.Errorf("ARP on the wire (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantNA, gotNA, addrComparer); diff != "" {
		t.Errorf("NA on the wire (-want +got):\n%s", diff)
	}
}

func TestLinkWatcherVeth(t *testing.T) {
	tb := newTestbed(t)
	var (
		w   *Watcher
		idx int
	)
	tb.inR1(t, "watch", func() (err error) {
		w, err = Watch(tb.ctx, tb.log)
		return err
	})
	defer func() {
		w.Close()
		checkNoWatcherGoroutine(t)
	}()

	// want waits (bounded) for an event about r1's eth0 with the given
	// state, skipping others; the snapshot comes first.
	want := func(up bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					t.Fatal("Events closed")
				}
				t.Logf("event %v", ev)
				if ev.Name == "eth0" && ev.Up == up {
					if idx != 0 && ev.Index != idx {
						t.Errorf("index %d, want %d", ev.Index, idx)
					}
					idx = ev.Index
					return
				}
			case <-deadline:
				t.Fatalf("no eth0 up=%v event within 10 s", up)
			}
		}
	}
	linkUp := func() bool {
		var up bool
		tb.inR1(t, "LinkUp", func() (err error) { up, err = LinkUp("eth0"); return err })
		return up
	}

	want(true) // snapshot
	if !linkUp() {
		t.Error("LinkUp = false at start")
	}

	if err := tb.r1Link.SetUp(false); err != nil { // the peer (switch port) goes down
		t.Fatal(err)
	}
	want(false)
	if linkUp() {
		t.Error("LinkUp = true without carrier")
	}

	if err := tb.r1Link.SetUp(true); err != nil {
		t.Fatal(err)
	}
	want(true)
	if !linkUp() {
		t.Error("LinkUp = false after the peer came back")
	}

	// Administratively down on our side: the same.
	if err := tb.r1Link.SetHostUp(false); err != nil {
		t.Fatal(err)
	}
	want(false)
}
