//go:build carpd_pprof

package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCPUProfileKnob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv("CARPD_CPUPROFILE", path)
	startCPUProfile()()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		t.Fatal("empty profile")
	}
}
