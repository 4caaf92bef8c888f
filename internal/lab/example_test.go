package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/lab"
)

// Example builds a LAN with a client and a router holding a VIP, and
// measures what the client sees. It needs root, so it is compiled but not
// run; TestExampleVIPMove runs the same steps.
func Example() {
	l, err := lab.New("demo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	lan, _ := l.Switch("lan")
	client, _ := l.Host("client")
	r1, _ := l.Host("r1")
	l.Attach(client, lan, "eth0", "10.0.0.100/24")
	l.Attach(r1, lan, "eth0", "10.0.0.2/24", "10.0.0.1/24")

	daemon, _ := r1.Start("carpd", "-config", "/tmp/r1.conf")
	probe, _ := client.StartProbe(netip.MustParseAddr("10.0.0.1"), 10*time.Millisecond, time.Minute)
	time.Sleep(time.Second)
	daemon.Kill()
	time.Sleep(5 * time.Second)
	fmt.Println(probe.Stop().Longest())
}

// TestExampleVIPMove moves a VIP by hand from one router to another while a
// client pings it every 10 ms, and checks that the probe saw the service
// before and after, with a short outage between.
func TestExampleVIPMove(t *testing.T) {
	lab.Require(t)
	l, err := lab.New("labex")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	lan, err := l.Switch("lan")
	check(err)
	hosts := map[string][]string{
		"client": {"10.0.0.100/24", "fd00::100/64"},
		"r1":     {"10.0.0.2/24"},
		"r2":     {"10.0.0.3/24"},
	}
	h := map[string]*lab.Host{}
	for _, name := range []string{"client", "r1", "r2"} {
		h[name], err = l.Host(name)
		check(err)
		_, err = l.Attach(h[name], lan, "eth0", hosts[name]...)
		check(err)
	}
	client, r1, r2 := h["client"], h["r1"], h["r2"]
	addrs, err := client.Addrs("eth0")
	check(err)
	if !slices.Contains(addrs, "10.0.0.100/24") || !slices.Contains(addrs, "fd00::100/64") {
		t.Fatalf("client addresses = %v", addrs)
	}

	// r1 holds the VIP.
	_, err = r1.Run(ctx, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
	check(err)
	vip := netip.MustParseAddr("10.0.0.1")
	probe, err := client.StartProbe(vip, 10*time.Millisecond, 20*time.Second)
	check(err)
	// waitReplies waits for 20 answered requests sent since t.
	waitReplies := func(t0 time.Time) {
		t.Helper()
		for range 500 { // 5 s
			if probe.RepliesSince(t0) >= 20 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("fewer than 20 replies since %v: %v", t0, probe.Snapshot())
	}
	start := time.Now()
	waitReplies(start)
	t.Logf("%v: 20 replies from r1", time.Since(start))
	mac := func(host *lab.Host) string {
		t.Helper()
		s, err := host.LinkState("eth0")
		check(err)
		return s.MAC
	}
	if got, state, err := client.Neigh("eth0", "10.0.0.1"); err != nil || got != mac(r1) {
		t.Fatalf("client's neighbour 10.0.0.1 = %q (%s, %v), want r1's %s", got, state, err, mac(r1))
	}

	// Move it to r2. No gratuitous ARP here: flush the client's entry.
	_, err = r1.Run(ctx, "ip", "addr", "del", "10.0.0.1/24", "dev", "eth0")
	check(err)
	_, err = r2.Run(ctx, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
	check(err)
	_, err = client.Run(ctx, "ip", "neigh", "flush", "dev", "eth0", "to", "10.0.0.1")
	check(err)
	moved := time.Now()
	t.Logf("%v: moved", time.Since(start))
	waitReplies(moved)
	t.Logf("%v: 20 replies from r2", time.Since(start))
	res := probe.Stop()
	t.Logf("probe: %v", res)

	if got, state, err := client.Neigh("eth0", "10.0.0.1"); err != nil || got != mac(r2) {
		t.Errorf("client's neighbour 10.0.0.1 = %q (%s, %v), want r2's %s", got, state, err, mac(r2))
	}
	if res.Sent != res.Received+res.Lost || res.Received < 40 {
		t.Errorf("result %v: want Sent = Received + Lost and at least 40 replies", res)
	}
	for _, o := range res.Outages {
		if o.Lost <= 0 || o.Open || o.End.Before(o.Start) || o.Duration != o.End.Sub(o.Start) ||
			o.Start.After(moved) || o.Duration > time.Second {
			t.Errorf("insane outage %+v (moved at %v)", o, moved)
		}
	}
	if res.Longest() > time.Second {
		t.Errorf("longest outage %v", res.Longest())
	}
}
