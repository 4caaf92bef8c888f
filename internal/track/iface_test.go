package track

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/lab"
	"github.com/carpd/carpd/internal/vip"
	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/ubustest"
)

func TestParseNetStatus(t *testing.T) {
	for file, want := range map[string]NetStatus{
		"netifd-wan-pppoe.json":  {Up: true, Address: true, DefaultRoute: true, Device: "pppoe-wan"},
		"netifd-wan-down.json":   {Device: "eth1"},
		"netifd-lan-static.json": {Up: true, Address: true, Device: "br-lan"},
	} {
		raw, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseNetStatus(raw); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", file, got, err, want)
		}
	}
	if _, err := parseNetStatus(json.RawMessage(`[1]`)); err == nil {
		t.Error("a list parsed as a status")
	}
}

// TestInterfaceTrackerNetifd follows a network through a ubus netifd
// object (on the fake ubusd): the PPPoE session drops, netifd's event
// wakes the tracker long before its 10 s interval, and `down` rounds later
// it is down; the session returns and `up` rounds later it is up.
func TestInterfaceTrackerNetifd(t *testing.T) {
	s := ubustest.NewServer()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	netifdConn, err := ubus.NewConn(ctx, s.Pipe(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer netifdConn.Close()
	var file atomic.Value
	file.Store("netifd-wan-pppoe.json")
	_, err = netifdConn.AddObject(ctx, "network.interface.wan", []ubus.Method{{Name: "status",
		Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) {
			return os.ReadFile("testdata/" + file.Load().(string))
		}}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ubus.NewConn(ctx, s.Pipe(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	nd := &UbusNetifd{Caller: cl}

	reports := make(chan Report, 4)
	tr := Start(ctx, config.Track{Name: "wan_if", Type: config.TrackInterface, Device: "wan",
		Interval: 10 * time.Second, Down: 2, Up: 2}, Env{Netifd: nd}, func(r Report) { reports <- r })
	defer tr.Stop()
	waitState(t, tr, StateUp, 0)

	// Two events: two rounds at once (each event wakes one round).
	file.Store("netifd-wan-down.json")
	start := time.Now()
	nd.Notify()
	waitRounds(t, tr, 2)
	nd.Notify()
	r := waitReport(t, reports)
	if !r.Down || r.Value != 1 || r.Reason != "network wan is down for 2 rounds" || time.Since(start) > 5*time.Second {
		t.Fatalf("report %+v after %v", r, time.Since(start))
	}
	file.Store("netifd-lan-static.json") // up with an address, no default route
	nd.Notify()
	waitRounds(t, tr, 4)
	if st := tr.Status(); st.State != StateDown || st.Bad != 3 {
		t.Fatalf("status %+v", st)
	}
	file.Store("netifd-wan-pppoe.json")
	nd.Notify()
	waitRounds(t, tr, 5)
	nd.Notify()
	r = waitReport(t, reports)
	if r.Down || r.Value != 0 || r.Reason != "network wan is up with an address and a default route for 2 rounds" {
		t.Fatalf("report %+v", r)
	}
	if st := tr.Status(); st.Error != "" {
		t.Fatalf("status %+v", st)
	}
}

func waitRounds(t *testing.T, tr *Tracker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tr.Status().Rounds < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d rounds after 5 s: %+v", n, tr.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestInterfaceTrackerCarrier follows a real device's carrier: the veth's
// peer goes down, the device loses carrier, the tracker goes down; back up
// when the peer returns.
func TestInterfaceTrackerCarrier(t *testing.T) {
	lab.Require(t)
	l, err := lab.New("trkif")
	if err != nil {
		t.Fatal(err)
	}
	lab.Cleanup(t, l)
	sw, err := l.Switch("sw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := l.Host("r")
	if err != nil {
		t.Fatal(err)
	}
	link, err := l.Attach(h, sw, "wan0", "192.0.2.2/24")
	if err != nil {
		t.Fatal(err)
	}
	env := Env{LinkUp: func(dev string) (up bool, err error) {
		if derr := h.Do(func() error { up, err = vip.LinkUp(dev); return nil }); derr != nil {
			return false, derr
		}
		return up, err
	}}
	reports := make(chan Report, 4)
	tr := Start(context.Background(), config.Track{Name: "wan_carrier", Type: config.TrackInterface, Device: "wan0",
		Interval: 50 * time.Millisecond, Down: 3, Up: 3}, env, func(r Report) { reports <- r })
	defer tr.Stop()
	waitState(t, tr, StateUp, 0)
	if err := link.SetUp(false); err != nil { // the switch's end: wan0 loses carrier
		t.Fatal(err)
	}
	if r := waitReport(t, reports); !r.Down || r.Reason != "device wan0 has no carrier for 3 rounds" {
		t.Fatalf("report %+v", r)
	}
	if err := link.SetUp(true); err != nil {
		t.Fatal(err)
	}
	if r := waitReport(t, reports); r.Down || r.Reason != "device wan0 has carrier for 3 rounds" {
		t.Fatalf("report %+v", r)
	}
}

// TestPingDeviceFromNetwork: a ping tracker's device given as an OpenWrt
// network is resolved through netifd to its device (here the loopback);
// a network without a device makes every round bad with the reason.
func TestPingDeviceFromNetwork(t *testing.T) {
	needRoot(t)
	s := ubustest.NewServer()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	netifdConn, err := ubus.NewConn(ctx, s.Pipe(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer netifdConn.Close()
	for name, status := range map[string]string{
		"loop": `{"up":true,"l3_device":"lo","device":"lo","ipv4-address":[{"address":"127.0.0.1","mask":8}],"route":[]}`,
		"gone": `{"up":false,"proto":"pppoe","data":{}}`,
	} {
		status := status
		_, err = netifdConn.AddObject(ctx, "network.interface."+name, []ubus.Method{{Name: "status",
			Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) { return json.RawMessage(status), nil }}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cl, err := ubus.NewConn(ctx, s.Pipe(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	env := Env{Netifd: &UbusNetifd{Caller: cl}}

	cfg := config.Track{Name: "lo", Type: config.TrackPing, Targets: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Interval: 50 * time.Millisecond, Device: "loop"}
	tr := Start(ctx, cfg, env, func(r Report) { t.Errorf("report %+v", r) })
	waitRounds(t, tr, 3)
	if st := tr.Status(); st.Good < 3 || st.Bad != 0 || st.Error != "" {
		t.Fatalf("status %+v", st)
	}
	tr.Stop()

	reports := make(chan Report, 1)
	cfg.Device, cfg.Down = "gone", 2
	tr = Start(ctx, cfg, env, func(r Report) { reports <- r })
	defer tr.Stop()
	r := waitReport(t, reports)
	if !r.Down || r.Reason != "0 of 1 targets answered: network gone has no device (down?) for 2 rounds" {
		t.Fatalf("report %+v", r)
	}
	if st := tr.Status(); st.Error != "network gone has no device (down?)" || st.Targets[0].Sent != 0 {
		t.Fatalf("status %+v", st)
	}
}
