package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/carpd/carpd/ubus/json"
)

// persisted is what survives a restart of carpd (the state file).
type persisted struct {
	Maintenance bool `json:"maintenance"`
}

func (d *Daemon) statePath() string { return d.cfg.Global.StatePath() }

// loadState reads the state file; a missing or unreadable one means the
// defaults (logged when it exists but cannot be read).
func (d *Daemon) loadState() persisted {
	var p persisted
	b, err := os.ReadFile(d.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return p
	}
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		d.log.Error("ignoring unreadable state file", "path", d.statePath(), "err", err)
	}
	return p
}

// saveState writes the state file at path atomically (rename), so a crash
// never leaves half a file. It runs off the loop.
func saveState(path string, p persisted) (err error) {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	defer func() {
		if err != nil {
			_ = os.Remove(tmp) // a full disk keeps no half-written file
		}
	}()
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// MaintenanceResult answers a maintenance request.
type MaintenanceResult struct {
	Maintenance bool `json:"maintenance"`
	// Persisted is false when the state file could not be written: the
	// mode is in force, but a restart of carpd forgets it.
	Persisted bool   `json:"persisted"`
	Warning   string `json:"warning,omitempty"`
}

// Maintenance turns maintenance mode on or off: every vhid is demoted by
// MaintenanceDemotion so the peers take over, until it is turned off. The
// setting is saved in the state file and survives restarts of carpd. When
// the file cannot be written (a full or read-only disk), the mode changes
// all the same, and the result (and status, until a write works) says it
// will not survive a restart.
func (d *Daemon) Maintenance(enable bool) (MaintenanceResult, error) {
	// The file is written off the loop; stateMu keeps the file in the
	// order of the requests.
	d.stateMu.Lock()
	defer d.stateMu.Unlock()
	var path string
	if err := d.do(func() {
		path = d.statePath()
		if d.maint != enable {
			d.maint = enable
			d.log.Warn("maintenance mode", "enabled", enable)
			d.updateDemotion()
		}
	}); err != nil {
		return MaintenanceResult{}, err
	}
	werr := saveState(path, persisted{Maintenance: enable})
	if werr != nil {
		werr = fmt.Errorf("state file %s: %w", path, werr)
	}
	_ = d.do(func() { d.stateErr = werr })
	res := MaintenanceResult{Maintenance: enable, Persisted: werr == nil}
	if werr != nil {
		res.Warning = "maintenance mode will not survive a restart of carpd: " + werr.Error()
		d.log.Error("maintenance mode not saved; a restart of carpd forgets it", "enabled", enable, "err", werr)
	}
	return res, nil
}
