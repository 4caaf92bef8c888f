//go:build linux

// Package benchhost holds what carpd's benchmark programs (bench/failover,
// bench/sync) need from the machine they run on.
package benchhost

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Renice sets the niceness of every thread of this process; threads and
// processes created later inherit it.
func Renice(nice int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("setpriority %d: %w", tid, err)
		}
	}
	return nil
}

// LoadAvg returns the first three fields of /proc/loadavg, or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
