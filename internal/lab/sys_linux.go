//go:build linux

package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// procAttr puts a child in a process group of its own (so the group can be
// killed as one) and has the kernel SIGKILL it when the test binary dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// inNS runs fn on a fresh goroutine locked to an OS thread that has joined
// the network namespace bound at nsPath, then returns the thread to its
// original namespace. If that fails the thread stays locked, so the runtime
// destroys it when the goroutine exits and no other goroutine ever runs in
// the wrong namespace. A panic in fn is re-raised in the caller.
func inNS(nsPath string, fn func() error) error {
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("lab: open netns: %w", err)
	}
	defer target.Close()
	var want unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &want); err != nil {
		return fmt.Errorf("lab: stat netns %s: %w", nsPath, err)
	}

	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: open current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: setns %s: %w", nsPath, err)}
			return
		}

		var r result
		var got unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &got); err != nil {
			r.err = fmt.Errorf("lab: stat netns after setns: %w", err)
		} else if got.Dev != want.Dev || got.Ino != want.Ino {
			r.err = fmt.Errorf("lab: setns %s: thread is in netns %d, want %d", nsPath, got.Ino, want.Ino)
		} else {
			func() {
				defer func() {
					if v := recover(); v != nil {
						r.panicked, r.value = true, v
					}
				}()
				r.err = fn()
			}()
		}

		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("lab: return from netns %s: %w", nsPath, err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

// maxEINTR bounds the retries of an interrupted waitid.
const maxEINTR = 1000

// waitExited blocks until process pid has exited but leaves it a zombie
// (WNOWAIT), so its pid, and with it the process group id, cannot be reused
// until it is reaped.
func waitExited(pid int) error {
	var err error
	for range maxEINTR {
		var info unix.Siginfo
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
	return err
}

// killGroup sends sig to every process in process group pgid.
func killGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return fmt.Errorf("lab: bad process group %d", pgid)
	}
	return unix.Kill(-pgid, sig)
}

// signalPid sends sig to process pid.
func signalPid(pid int, sig syscall.Signal) error {
	return unix.Kill(pid, sig)
}

// pidAlive reports whether process pid exists.
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
