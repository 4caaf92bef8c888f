package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMaintenanceSurvivesRestart: maintenance mode hands every vhid to the
// peer and stays on across a restart of carpd until it is turned off.
func TestMaintenanceSurvivesRestart(t *testing.T) {
	c, r1, r2 := twoRouters(t, true)
	c.run(r1.host, carpdBin, "maintenance", "-s", r1.sock(), "on")
	c.waitState(r2, "lan", 1, "MASTER", 2*time.Second)
	c.waitState(r1, "lan", 1, "BACKUP", time.Second)
	if st := c.status(r1); !st.Demotion.Maintenance || st.VHIDs[0].Demotion != 240 {
		t.Fatalf("demotion %+v, vhid demotion %d", st.Demotion, st.VHIDs[0].Demotion)
	}
	c.stop(r1)
	c.start(r1, confText(true, lanVHID(0)))
	c.waitHearing(r1, "lan", 1, 3*time.Second)
	time.Sleep(3500 * time.Millisecond) // > master-down: r1 must not take over
	if s := c.state(r1, "lan", 1); s != "BACKUP" || !c.status(r1).Demotion.Maintenance {
		t.Fatalf("after restart r1 is %s, maintenance %v", s, c.status(r1).Demotion.Maintenance)
	}
	c.run(r1.host, carpdBin, "maintenance", "-s", r1.sock(), "off")
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	c.onlyHolder(r1, "lan", vip4)
}

// TestHotplugEvents: every transition runs hotplug-call carp with ACTION,
// VHID, INTERFACE and VIPS, in order.
func TestHotplugEvents(t *testing.T) {
	c := newCluster(t, 1)
	r1 := c.routers[0]
	log := filepath.Join(r1.dir, "hotplug.log")
	hp := filepath.Join(r1.dir, "hotplug-call")
	if err := os.WriteFile(hp, []byte("#!/bin/sh\necho \"$1 $ACTION $PREVIOUS $VHID $INTERFACE $VIPS\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v := lanVHID(0)
	v.addrs = append(v.addrs, "fd00:1::1/64")
	conf := strings.Replace(confText(false, v), "option log_level", "option hotplug_call '"+hp+"'\n\toption log_level", 1)
	c.start(r1, conf)
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	if err := r1.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r1.proc.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "carp BACKUP INIT 1 lan 10.0.1.1/24 fd00:1::1/64\n" +
		"carp MASTER BACKUP 1 lan 10.0.1.1/24 fd00:1::1/64\n" +
		"carp INIT MASTER 1 lan 10.0.1.1/24 fd00:1::1/64\n"
	if string(b) != want {
		t.Fatalf("hotplug log:\n%s\nwant:\n%s", b, want)
	}
}

// TestHotplugReloadOnOff: a reload changes the hook program, and
// `option hotplug_call ”` turns the hooks off: transitions after it run
// nothing, and status says hotplug_call "".
func TestHotplugReloadOnOff(t *testing.T) {
	c := newCluster(t, 1)
	r1 := c.routers[0]
	log := filepath.Join(r1.dir, "hotplug.log")
	hook := func(name string) string {
		p := filepath.Join(r1.dir, "hook-"+name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho \""+name+" $ACTION\" >> "+log+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := hook("a"), hook("b")
	conf := func(hp string) string {
		return strings.Replace(confText(false, lanVHID(0)), "option log_level", "option hotplug_call '"+hp+"'\n\toption log_level", 1)
	}
	waitLog := func(want string) {
		t.Helper()
		c.waitFor(5*time.Second, "hook log "+strings.ReplaceAll(want, "\n", "; "), func() bool {
			got, _ := os.ReadFile(log)
			return string(got) == want
		})
	}
	reload := func(hp string) {
		t.Helper()
		if err := os.WriteFile(r1.conf(), []byte(strings.ReplaceAll(conf(hp), "@SOCK@", r1.sock())), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run(r1.host, carpdBin, "reload", "-s", r1.sock())
		if got := c.status(r1).HotplugCall; got != hp {
			t.Fatalf("status hotplug_call %q after reload, want %q", got, hp)
		}
	}
	flap := func() {
		t.Helper()
		if err := r1.links["lan"].SetUp(false); err != nil {
			t.Fatal(err)
		}
		c.waitState(r1, "lan", 1, "INIT", 3*time.Second)
		if err := r1.links["lan"].SetUp(true); err != nil {
			t.Fatal(err)
		}
		c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	}

	c.start(r1, conf(a))
	c.waitState(r1, "lan", 1, "MASTER", 6*time.Second)
	if got := c.status(r1).HotplugCall; got != a {
		t.Fatalf("status hotplug_call %q, want %q", got, a)
	}
	waitLog("a BACKUP\na MASTER\n")
	reload(b)
	flap()
	waitLog("a BACKUP\na MASTER\nb INIT\nb BACKUP\nb MASTER\n")
	reload("")
	flap()
	time.Sleep(500 * time.Millisecond) // time for a hook that should not run
	waitLog("a BACKUP\na MASTER\nb INIT\nb BACKUP\nb MASTER\n")
}
