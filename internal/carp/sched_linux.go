package carp

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// DaemonNice is the niceness carpd gives itself at start (RaisePriority):
// with it, a CPU-bound job at the default niceness 0 on the router (a
// build, a VPN, stress-ng) gets about a tenth of the CPU weight of the
// daemon, so the advert timers and the receive path are served within
// their intervals when every core is busy (docs/performance.md).
const DaemonNice = -10

// RaisePriority lowers the niceness of every thread of this process to
// nice, never raising one that is already lower (an operator's choice, or
// a unit file's Nice=, wins). Linux keeps the niceness per thread and a
// new thread inherits its creator's, so threads the Go runtime starts
// later inherit it too. It returns the niceness the process had and an
// error when it is not permitted (no CAP_SYS_NICE and RLIMIT_NICE below
// it); the caller logs it and runs on.
func RaisePriority(nice int) (was int, err error) {
	// getpriority(2) returns 20 - nice for the raw syscall; x/sys/unix
	// returns that raw value.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0, err
	}
	was = 20 - raw
	if was <= nice {
		return was, nil
	}
	// Readdirnames, not os.ReadDir: ReadDir sorts, and its generic sort
	// costs 8 KB of the binary.
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return was, err
	}
	tasks, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return was, err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t)
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
			return was, fmt.Errorf("setpriority(%d) on thread %d: %w", nice, tid, err)
		}
	}
	return was, nil
}
