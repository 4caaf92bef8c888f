//go:build !carpd_pprof

package main

// startCPUProfile is a no-op in release builds: runtime/pprof and the
// compressor it writes with cost about 180 KB of the MIPS binary
// (package/SIZE.md). Build with -tags carpd_pprof for the CARPD_CPUPROFILE
// debug knob (profile_pprof.go).
func startCPUProfile() (stop func()) { return func() {} }
