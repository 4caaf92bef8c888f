package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/ubus/json"
)

// TestMetricsCLI: carpd metrics asks the control socket for the status
// and prints it as metrics (internal/metrics has the format's tests); when
// carpd does not answer it prints carpd_up 0 and exits 1, so a textfile
// rewritten from its output says "down".
func TestMetricsCLI(t *testing.T) {
	status, err := os.ReadFile("internal/luciview/testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan daemon.Request, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req daemon.Request
			_ = json.NewDecoder(c).Decode(&req)
			got <- req
			_ = json.NewEncoder(c).Encode(daemon.Response{OK: true, Result: status})
			c.Close()
		}
	}()
	code, out, errs := runCLI("metrics", "-s", sock)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if r := <-got; r.Method != "status" {
		t.Errorf("asked %q, want status", r.Method)
	}
	for _, want := range []string{"carpd_up 1\n", `carpd_vhid_state{interface="eth1",vhid="2",state="BACKUP"} 1` + "\n",
		`carpd_tracker_state{tracker="wan_ping",state="down"} 1` + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}

	code, out, errs = runCLI("metrics", "-s", filepath.Join(t.TempDir(), "none.sock"))
	if code != 1 || !strings.HasSuffix(out, "\ncarpd_up 0\n") || strings.Count(out, "\n") != 3 || !strings.Contains(errs, "cannot reach carpd") {
		t.Errorf("without carpd: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := runCLI("metrics", "-s", sock, "extra"); code != 2 || !strings.Contains(errs, "usage") {
		t.Errorf("an extra argument: exit %d: %s", code, errs)
	}
}
