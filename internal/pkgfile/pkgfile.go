// Package pkgfile is the file list an OpenWrt package holds, shared by the
// .ipk writer (internal/ipk) and the .apk writer (internal/apk): both take
// the same files and refuse the same mistakes.
package pkgfile

import (
	"fmt"
	"io/fs"
	"path"
)

// File is one regular file of a package.
type File struct {
	Path string      // absolute and clean, e.g. /usr/sbin/carpd
	Mode fs.FileMode // permission bits only, e.g. 0o755
	Data []byte
}

// Check refuses a path that is not absolute and clean (or is "/"), a mode
// with more than permission bits, a path listed twice, and a file that is
// also the parent directory of another.
func Check(files []File) error {
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("file path %q must be absolute and clean", f.Path)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("%s: mode %v: only permission bits are supported", f.Path, f.Mode)
		}
		if seen[f.Path] {
			return fmt.Errorf("%s listed twice", f.Path)
		}
		seen[f.Path] = true
	}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("%s is a file and the parent directory of %s", d, f.Path)
			}
		}
	}
	return nil
}
