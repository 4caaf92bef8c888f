//go:build !linux

package carp

import "errors"

// DaemonNice: see sched_linux.go.
const DaemonNice = -10

// RaisePriority is Linux-only (per-thread niceness).
func RaisePriority(nice int) (was int, err error) {
	return 0, errors.New("raising the scheduling priority is implemented on Linux only")
}
