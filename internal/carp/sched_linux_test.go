package carp

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNices reads the niceness of every thread of this process from
// /proc (field 19 of stat).
func threadNices(t *testing.T) map[int]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, e := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		n, err := strconv.Atoi(f[16]) // field 19, counted after the comm
		if err != nil {
			t.Fatal(err)
		}
		tid, _ := strconv.Atoi(e.Name())
		out[tid] = n
	}
	return out
}

// TestRaisePriority: every thread, and a thread started afterwards, runs
// at the niceness asked for; a lower niceness already set is kept.
func TestRaisePriority(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lowering the niceness needs root (CAP_SYS_NICE)")
	}
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	orig := 20 - raw
	restore := func(n int) {
		for tid := range threadNices(t) {
			_ = unix.Setpriority(unix.PRIO_PROCESS, tid, n)
		}
	}
	t.Cleanup(func() { restore(orig) })
	restore(3)

	was, err := RaisePriority(-4)
	if err != nil {
		t.Fatal(err)
	}
	if was != 3 {
		t.Errorf("RaisePriority reported niceness %d before, want 3", was)
	}
	for tid, n := range threadNices(t) {
		if n != -4 {
			t.Errorf("thread %d at niceness %d, want -4", tid, n)
		}
	}
	// Threads the runtime starts later inherit it: lock goroutines to
	// threads so that it needs more.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			wg.Done()
			<-release
		}()
	}
	wg.Wait()
	for tid, n := range threadNices(t) {
		if n != -4 {
			t.Errorf("thread %d (possibly new) at niceness %d, want -4", tid, n)
		}
	}
	close(release)

	// A niceness already below the target is kept.
	restore(-6)
	if was, err := RaisePriority(-4); err != nil || was != -6 {
		t.Errorf("RaisePriority(-4) at -6 = %d, %v", was, err)
	}
	for tid, n := range threadNices(t) {
		if n != -6 {
			t.Errorf("thread %d at niceness %d, want -6 kept", tid, n)
		}
	}
}
