package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/ubus"
	"github.com/carpd/carpd/ubus/json"
	"github.com/carpd/carpd/ubus/ubustest"
)

// TestUbusObject: carpd registers its object on ubusd (here the fake ubusd
// of ubus/ubustest on a unix socket, which the namespaces share through the
// file system), answers status/demote/maintenance/reload with LuCI's extra
// ubus_rpc_session argument, sends carp.state on every transition, and
// re-registers after ubusd restarts.
func TestUbusObject(t *testing.T) {
	c := newCluster(t, 2)
	r1, r2 := c.routers[0], c.routers[1]
	sock, srv := fakeUbusd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli, evs := listenEvents(t, ctx, sock, "carp.*")

	withUbus := func(conf string) string {
		return strings.Replace(conf, "option log_level", "option ubus_socket '"+sock+"'\n\toption log_level", 1)
	}
	c.start(r1, withUbus(confText(false, lanVHID(0))))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.start(r2, confText(false, lanVHID(100))) // r2 without ubus
	c.waitHearing(r2, "lan", 1, 3*time.Second)

	c.waitFor(5*time.Second, "carpd object on ubus", func() bool {
		for _, o := range srv.Objects() {
			if o == "carpd" {
				return true
			}
		}
		return false
	})
	call := func(method, args string) (map[string]any, error) {
		raw, err := cli.Call(ctx, "carpd", method, json.RawMessage(args))
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	st, err := call("status", `{"ubus_rpc_session":"00000000000000000000000000000000"}`)
	if err != nil {
		t.Fatal(err)
	}
	vhids := st["vhids"].([]any)
	if v := vhids[0].(map[string]any); v["state"] != "MASTER" || v["interface"] != "lan" {
		t.Fatalf("status over ubus: %v", v)
	}

	// demote by 1 hands over; -1 is not preempted back (no preempt), so
	// demote r2 afterwards to bring it home.
	if _, err := call("demote", `{"by":1,"ubus_rpc_session":"x"}`); err != nil {
		t.Fatal(err)
	}
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	if _, err := call("demote", `{"by":"-1"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := call("demote", `{"vhid":99,"by":1}`); !errorIs(err, ubus.StatusNotFound) {
		t.Fatalf("demote of an unknown vhid: %v", err)
	}
	if _, err := call("demote", `{}`); !errorIs(err, ubus.StatusInvalidArgument) {
		t.Fatalf("demote without by: %v", err)
	}
	if _, err := call("resync", `{}`); !errorIs(err, ubus.StatusNotSupported) {
		t.Fatalf("resync without sync: %v", err)
	}
	if _, err := call("maintenance", `{"enable":true}`); err != nil {
		t.Fatal(err)
	}
	if st := c.status(r1); !st.Demotion.Maintenance {
		t.Fatal("maintenance not on")
	}
	if _, err := call("maintenance", `{"enable":0}`); err != nil {
		t.Fatal(err)
	}
	if _, err := call("reload", `{}`); err != nil {
		t.Fatal(err)
	}

	// Events: INIT->BACKUP, BACKUP->MASTER at start were sent before our
	// listener may have seen them only if registered in time; the demotion
	// gave MASTER->BACKUP for certain.
	c.waitFor(3*time.Second, "carp.state MASTER->BACKUP event", func() bool {
		for _, e := range evs.all() {
			if e["event"] == "carp.state" && e["from"] == "MASTER" && e["to"] == "BACKUP" &&
				e["interface"] == "lan" && e["vhid"] == float64(1) && e["master"] == "10.0.1.3" {
				return true
			}
		}
		return false
	})

	// ubusd restarts: carpd registers again by itself.
	srv.Close()
	srv2 := ubustest.NewServer()
	if err := srv2.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Close() })
	c.waitFor(15*time.Second, "carpd object re-registered", func() bool {
		for _, o := range srv2.Objects() {
			if o == "carpd" {
				return true
			}
		}
		return false
	})
}

func errorIs(err error, st ubus.Status) bool {
	return err != nil && ubus.StatusOf(err) == st
}

// TestNetworkName: `option interface` names an OpenWrt network; carpd asks
// netifd (network.interface.<name> status, here served by the test on the
// fake ubusd) for its device, and follows it when netifd announces that
// the network moved to another device.
func TestNetworkName(t *testing.T) {
	c := newCluster(t, 1, segment{name: "lan", prefix: "10.0.1", n: 1}, segment{name: "wan", prefix: "10.0.2", n: 2})
	r1 := c.routers[0]
	sock := filepath.Join(t.TempDir(), "ubus.sock")
	srv := ubustest.NewServer()
	if err := srv.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	netifd, err := ubus.Dial(ctx, sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer netifd.Close()
	var mu sync.Mutex
	dev := "lan"
	if _, err := netifd.AddObject(ctx, "network.interface.uplink", []ubus.Method{{Name: "status",
		Handler: func(context.Context, json.RawMessage) (json.RawMessage, error) {
			mu.Lock()
			defer mu.Unlock()
			return json.RawMessage(`{"up":true,"available":true,"proto":"static","l3_device":"` + dev + `"}`), nil
		}}}); err != nil {
		t.Fatal(err)
	}

	v := vhidConf{iface: "uplink", vhid: 3, advbase: 1, password: "p", addrs: []string{"10.0.9.1/24"}}
	conf := strings.Replace(confText(false, v), "option log_level", "option ubus_socket '"+sock+"'\n\toption log_level", 1)
	c.start(r1, conf)
	c.waitFor(10*time.Second, "vhid 3 MASTER on lan", func() bool {
		st := c.status(r1)
		return len(st.VHIDs) == 1 && st.VHIDs[0].State == "MASTER" && st.VHIDs[0].Interface == "lan" && st.VHIDs[0].Network == "uplink"
	})
	if !c.hasAddr(r1, "lan", "10.0.9.1/24") {
		t.Fatal("VIP not on lan")
	}
	mu.Lock()
	dev = "wan"
	mu.Unlock()
	if err := netifd.Send(ctx, "network.interface", json.RawMessage(`{"action":"ifupdate","interface":"uplink"}`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(10*time.Second, "vhid 3 MASTER on wan", func() bool {
		st := c.status(r1)
		return len(st.VHIDs) == 1 && st.VHIDs[0].State == "MASTER" && st.VHIDs[0].Interface == "wan"
	})
	if c.hasAddr(r1, "lan", "10.0.9.1/24") || !c.hasAddr(r1, "wan", "10.0.9.1/24") {
		t.Fatal("VIP did not move from lan to wan")
	}
}
