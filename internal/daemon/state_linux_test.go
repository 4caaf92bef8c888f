package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carpd/carpd/internal/testfs"
	"github.com/carpd/carpd/ubus/json"
)

// TestMaintenanceNotPersisted: with a state file that cannot be written
// (the disk is full), maintenance mode is entered all the same, and the
// answer and status say it will not survive a restart; turning it off
// works too. Once the file can be written again, the warning goes.
func TestMaintenanceNotPersisted(t *testing.T) {
	cfg := testConfig(t)
	dir := testfs.FullDir(t)
	cfg.Global.StateFile = filepath.Join(dir, "carpd.state")
	runDaemon(t, cfg, Options{})
	sock := cfg.Global.ControlSocket
	on := true
	raw, err := Call(sock, Request{Method: "maintenance", Enable: &on})
	if err != nil {
		t.Fatalf("maintenance on: %v", err)
	}
	var res MaintenanceResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Maintenance || res.Persisted || !strings.Contains(res.Warning, "will not survive a restart") {
		t.Fatalf("answer %+v", res)
	}
	st := status(t, sock)
	if !st.Demotion.Maintenance || !strings.Contains(st.StateFileError, cfg.Global.StateFile) {
		t.Fatalf("status: demotion %+v, state_file_error %q", st.Demotion, st.StateFileError)
	}
	// Nothing but FullDir's filler (as root; a plain user's directory is
	// read-only and empty): no half-written temporary file.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "filler" {
			t.Fatalf("left in the full directory: %v", ents)
		}
	}
	off := false
	if raw, err = Call(sock, Request{Method: "maintenance", Enable: &off}); err != nil {
		t.Fatalf("maintenance off: %v", err)
	}
	res = MaintenanceResult{}
	if err := json.Unmarshal(raw, &res); err != nil || res.Maintenance || res.Persisted {
		t.Fatalf("answer %+v %v", res, err)
	}
	if st := status(t, sock); st.Demotion.Maintenance {
		t.Fatal("maintenance still on")
	}
	// Room again: saved, and the warning is gone.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		os.Chmod(dir, 0o700)
	}
	if raw, err = Call(sock, Request{Method: "maintenance", Enable: &on}); err != nil {
		t.Fatal(err)
	}
	res = MaintenanceResult{}
	if err := json.Unmarshal(raw, &res); err != nil || !res.Persisted || res.Warning != "" {
		t.Fatalf("answer with room: %+v %v", res, err)
	}
	if st := status(t, sock); st.StateFileError != "" || !st.Demotion.Maintenance {
		t.Fatalf("status with room: %+v %q", st.Demotion, st.StateFileError)
	}
	b, err := os.ReadFile(cfg.Global.StateFile)
	if err != nil || !strings.Contains(string(b), `"maintenance":true`) {
		t.Fatalf("state file %q %v", b, err)
	}
}
