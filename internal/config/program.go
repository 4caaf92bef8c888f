//go:build unix

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// CheckProgram reports why the program at path must not be run as root: it
// is not a regular file, or it or a directory above it is not owned by root
// or may be written by group or others, so that someone other than root
// could change what runs. A root-owned directory with the sticky bit (/tmp)
// is fine: others cannot replace what root put in it. Symbolic links are
// followed and the target is checked. A program that does not exist is no
// error: the hook runner skips it.
func CheckProgram(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", real)
	}
	if err := rootOnly(real, fi, false); err != nil {
		return err
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if err := rootOnly(dir, di, true); err != nil {
			return err
		}
		if dir == "/" {
			return nil
		}
	}
}

// rootOnly checks that only root can change the file or directory.
func rootOnly(name string, fi fs.FileInfo, dir bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", name)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", name, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && !(dir && fi.Mode()&fs.ModeSticky != 0) {
		return fmt.Errorf("%s may be written by others than root (mode %v)", name, fi.Mode())
	}
	return nil
}
