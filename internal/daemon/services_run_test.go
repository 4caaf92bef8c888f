//go:build linux

package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// TestRunServiceInitd runs the real initd backend: the script gets the
// action, a failure reports the exit status and the end of the output, a
// hung script is killed at the timeout, and auto without ubus picks the
// script when it exists and systemd when it does not.
func TestRunServiceInitd(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "svc")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
echo "$1" >> `+dir+`/ran
case "$1" in
start) exit 0 ;;
stop) echo "not running" >&2; exit 3 ;;
reload) sleep 30 ;;
esac
`), 0o755); err != nil {
		t.Fatal(err)
	}
	d := New(config.Default(), Options{})
	s := config.DefaultService("x")
	s.Unit, s.InitScript = "svc", script
	ctx := context.Background()

	if b, err := d.runService(ctx, s, "start"); b != config.BackendInitd || err != nil {
		t.Errorf("auto start: backend %q, err %v; want initd, nil", b, err)
	}
	s.Backend = config.BackendInitd
	if _, err := d.runService(ctx, s, "stop"); err == nil || !strings.Contains(err.Error(), "exit status 3: not running") {
		t.Errorf("stop: %v, want exit status 3 with the output", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.runService(tctx, s, "reload"); err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 5*time.Second {
		t.Errorf("hung reload: %v after %v, want killed at the timeout", err, time.Since(start))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ran")); string(b) != "start\nstop\nreload\n" {
		t.Errorf("the script ran %q", b)
	}

	s.Backend, s.InitScript = config.BackendAuto, filepath.Join(dir, "missing")
	if b, _ := d.runService(ctx, s, "start"); b != config.BackendSystemd {
		t.Errorf("auto without a script: backend %q, want systemd", b)
	}
	s.Backend = config.BackendRC
	if _, err := d.runService(ctx, s, "start"); err == nil {
		t.Error("rc without ubus: no error")
	}
}
