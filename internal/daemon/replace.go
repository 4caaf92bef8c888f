package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// replaceFile replaces path with data, for the lease file and the
// objects of configuration sync: a new temporary file in the same
// directory (for the rename), created exclusively (the directory may be
// /tmp, where a fixed name could be a planted symlink), given the mode of
// the file it replaces (0644 for a new one) whatever the umask, synced,
// renamed over path, and the directory synced: a crash leaves the old
// file or the new one, never half of one. The owner is carpd's (root).
// (os.CreateTemp would do the name for 30 KB of mips code.)
func replaceFile(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	var f *os.File
	var tmp string
	for i := 0; f == nil; i++ {
		tmp = path + ".carpd" + strconv.FormatUint(uint64(time.Now().UnixNano())+uint64(i), 36)
		var err error
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && (!os.IsExist(err) || i == 3) {
			return err
		}
	}
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
