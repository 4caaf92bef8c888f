//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckProgram: a hook program that someone other than root could
// change is refused; one only root can change, or a missing one, is not.
func TestCheckProgram(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files must be owned by root")
	}
	dir := t.TempDir() // under /tmp: root-owned and sticky
	good := filepath.Join(dir, "hook")
	if err := os.WriteFile(good, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckProgram(good); err != nil {
		t.Errorf("a root-owned 0755 program: %v", err)
	}
	if err := CheckProgram(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing program: %v", err)
	}
	if err := CheckProgram("/bin/sh"); err != nil {
		t.Errorf("/bin/sh: %v", err)
	}

	writable := filepath.Join(dir, "writable")
	if err := os.WriteFile(writable, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(writable, 0o757)
	if err := CheckProgram(writable); err == nil || !strings.Contains(err.Error(), "written by others") {
		t.Errorf("a world-writable program: %v", err)
	}

	owned := filepath.Join(dir, "owned")
	if err := os.WriteFile(owned, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(owned, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := CheckProgram(owned); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("a program owned by nobody: %v", err)
	}

	// A directory on the way that others can write (and is not sticky).
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	inOpen := filepath.Join(open, "hook")
	if err := os.WriteFile(inOpen, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckProgram(inOpen); err == nil || !strings.Contains(err.Error(), open) {
		t.Errorf("a program in a world-writable directory: %v", err)
	}
	// A symlink to it is judged by its target.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(inOpen, link); err != nil {
		t.Fatal(err)
	}
	if err := CheckProgram(link); err == nil {
		t.Errorf("a symlink to a program in a world-writable directory is accepted")
	}
	if err := CheckProgram(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
