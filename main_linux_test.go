package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/internal/testfs"
	"github.com/carpd/carpd/ubus/json"
)

// TestMaintenanceCLINotPersisted: `carpd maintenance on` with a state file
// on a full file system (a 16 KiB tmpfs, filled; as non-root a directory
// of mode 0500) puts the daemon in maintenance all the same, and warns
// that it will not survive a restart; status shows it too.
func TestMaintenanceCLINotPersisted(t *testing.T) {
	dir := t.TempDir()
	full := testfs.FullDir(t)
	cfg := config.Default()
	sock := filepath.Join(dir, "carpd.sock")
	cfg.Global.ControlSocket, cfg.Global.StateFile = sock, filepath.Join(full, "state")
	cfg.Global.UbusSocket, cfg.Global.HotplugCall = "", ""
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
	code, _, errs := runCLI("maintenance", "-s", sock, "on")
	if code != 0 || !strings.Contains(errs, "warning: maintenance mode will not survive a restart") {
		t.Fatalf("maintenance on: exit %d: %s", code, errs)
	}
	code, out, errs := runCLI("status", "-s", sock, "--json")
	var st struct {
		Demotion struct {
			Maintenance bool `json:"maintenance"`
		} `json:"demotion"`
		StateFileError string `json:"state_file_error"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !st.Demotion.Maintenance || st.StateFileError == "" {
		t.Fatalf("status: exit %d %s%s", code, out, errs)
	}
	if code, out, _ := runCLI("status", "-s", sock); code != 0 || !strings.Contains(out, "MAINTENANCE MODE") ||
		!strings.Contains(out, "will not survive a restart") {
		t.Fatalf("status:\n%s", out)
	}
}
