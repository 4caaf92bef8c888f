package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/daemon"
)

// TestMaintenanceWaitCLI: `carpd maintenance on|off [--wait[=SECONDS]]`
// sends the wait it parsed (flags before or after on|off), prints the
// confirmation, and refuses what it cannot parse.
func TestMaintenanceWaitCLI(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan daemon.Request, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req daemon.Request
			_ = json.NewDecoder(c).Decode(&req)
			got <- req
			res, _ := json.Marshal(daemon.MaintenanceWaitResult{MaintenanceResult: daemon.MaintenanceResult{Maintenance: true, Persisted: true},
				Wait: &daemon.MaintenanceWaitStatus{State: daemon.MaintDone}})
			_ = json.NewEncoder(c).Encode(daemon.Response{OK: true, Result: res})
			c.Close()
		}
	}()
	for _, tc := range []struct {
		args []string
		on   bool
		wait int
	}{
		{[]string{"on"}, true, 0},
		{[]string{"on", "--wait"}, true, daemon.DefaultMaintenanceWait},
		{[]string{"on", "--wait=15"}, true, 15},
		{[]string{"--wait=5", "off"}, false, 5},
		{[]string{"-wait", "on"}, true, daemon.DefaultMaintenanceWait},
	} {
		args := append([]string{"maintenance", "-s", sock}, tc.args...)
		code, out, errs := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errs)
		}
		r := <-got
		if r.Method != "maintenance" || r.Enable == nil || *r.Enable != tc.on || r.Wait != tc.wait {
			t.Fatalf("%v: sent %+v", tc.args, r)
		}
		if !strings.Contains(out, "handover confirmed") {
			t.Errorf("%v: printed %q", tc.args, out)
		}
	}
	for _, bad := range [][]string{{"on", "--wait=x"}, {"on", "--wait=-1"}, {"on", "extra"}, {"--wait"}} {
		args := append([]string{"maintenance", "-s", sock}, bad...)
		if code, _, _ := runCLI(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// TestPrintSplitAndWait: `carpd status` shows a split-brain alarm and the
// last maintenance wait of the fixture.
func TestPrintSplitAndWait(t *testing.T) {
	st := daemon.Status{SplitBrain: []daemon.SplitBrainStatus{{Interface: "br-lan", VHID: 1}},
		MaintenanceWait: &daemon.MaintenanceWaitStatus{State: daemon.MaintWaiting, Reason: "0 of 1 vhids taken over by the peer; br-lan vhid 1 is MASTER"}}
	var out strings.Builder
	printSplitAndWait(&out, &st)
	for _, want := range []string{"SPLIT BRAIN: br-lan vhid 1 is MASTER here and on the sync peer", "maintenance handover waiting", "br-lan vhid 1 is MASTER\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
}
