//go:build linux

// Package benchhost holds what carpd's benchmark programs (bench/failover,
// bench/sync) need from the machine they run on.
package benchhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// CarpdBinary returns the carpd to benchmark: $CARPD_BIN (made absolute,
// and it must exist), else a `go build` of the module the benchmark runs
// in, written to dir (logf says so first).
func CarpdBinary(ctx context.Context, dir string, logf func(string, ...any)) (string, error) {
	if b := os.Getenv("CARPD_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("CARPD_BIN: %w", err)
		}
		return abs, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the carpd module: run from the repository")
	}
	root := filepath.Dir(mod)
	bin := filepath.Join(dir, "carpd")
	logf("building carpd in %s (CARPD_BIN is empty)", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build carpd: %w\n%s", err, out)
	}
	return bin, nil
}
