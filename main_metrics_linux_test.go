package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
)

// TestMetricsRealDaemon: carpd metrics against a running daemon (its
// status, not a fixture): a vhid on an interface that does not exist
// (INIT, not running), maintenance mode seen in the metrics, and output
// promtool accepts when it is installed.
func TestMetricsRealDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	sock := filepath.Join(dir, "carpd.sock")
	cfg.Global.ControlSocket, cfg.Global.StateFile = sock, filepath.Join(dir, "state")
	cfg.Global.UbusSocket, cfg.Global.HotplugCall = "", ""
	cfg.VHIDs = []config.VHID{{Name: "lan", Interface: "carpd-none0", VHID: 7, AdvBase: 1,
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.New(cfg, daemon.Options{}).Run(ctx, nil) }()
	defer func() {
		cancel()
		<-done
	}()
	for i := 0; ; i++ {
		if _, err := daemon.Call(sock, daemon.Request{Method: "status"}); err == nil {
			break
		} else if i == 200 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errs := runCLI("metrics", "-s", sock)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"carpd_up 1\n", "carpd_maintenance 0\n", "carpd_sync_enabled 0\n",
		`carpd_vhid_state{interface="carpd-none0",vhid="7",state="INIT"} 1` + "\n",
		`carpd_vhid_running{interface="carpd-none0",vhid="7"} 0` + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if code, _, errs := runCLI("maintenance", "-s", sock, "on"); code != 0 {
		t.Fatalf("maintenance on: exit %d: %s", code, errs)
	}
	if code, out, _ = runCLI("metrics", "-s", sock); code != 0 || !strings.Contains(out, "carpd_maintenance 1\n") {
		t.Errorf("after maintenance on: exit %d:\n%s", code, out)
	}
	if bin, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(out)
		if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("promtool check metrics: %v %s", err, b)
		}
	} else if os.Getenv("CARPD_REQUIRE_PROMTOOL") == "1" {
		t.Error("no promtool on PATH; CARPD_REQUIRE_PROMTOOL=1 wants it")
	}
}
