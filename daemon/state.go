package daemon

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

// saveState writes the state file atomically (rename), so a crash never
// leaves half a file.
func (d *Daemon) saveState(p persisted) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	path := d.statePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
