//go:build carpd_pprof

package main

import (
	"os"
	"runtime/pprof"
)

// startCPUProfile starts a CPU profile of the whole run when
// CARPD_CPUPROFILE=FILE is set (a debug knob for measuring idle cost; see
// BENCHMARKS.md). Only in builds with -tags carpd_pprof. stop writes the
// profile and closes the file.
func startCPUProfile() (stop func()) {
	path := os.Getenv("CARPD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
