package carp

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdTimer is the advert timer of a vhost on the system clock: a timerfd
// watched by the runtime's network poller, armed and read with raw system
// calls.
//
// Why not a time.Timer: the Go runtime's monitor thread (sysmon) sleeps
// until the next runtime timer and is woken by every system call that
// enters the scheduler's syscall path while it sleeps; it then polls every
// 20 µs until the program is idle again. A sub-second master's timer thus
// cost several context switches of that thread per advert besides the
// one of the goroutine that sends (docs/performance.md). A timerfd is no
// runtime timer, and raw system calls (which cannot block: the fd is
// non-blocking) do not wake the monitor.
type fdTimer struct {
	f  *os.File
	rc syscall.RawConn
	ch chan time.Time

	mu       sync.Mutex
	armed    bool
	deadline time.Time // of the current arming
	closed   bool
}

func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	t := &fdTimer{f: os.NewFile(uintptr(fd), "carp-timer"), ch: make(chan time.Time, 1)}
	rc, err := t.f.SyscallConn()
	if err != nil {
		t.f.Close()
		return nil, err
	}
	t.rc = rc
	go t.loop()
	return t, nil
}

// loop delivers expirations until the fd is closed.
func (t *fdTimer) loop() {
	var buf [8]byte
	for {
		err := t.rc.Read(func(fd uintptr) bool {
			_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), 8)
			return e != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		now := time.Now()
		t.mu.Lock()
		// An expiration of an earlier arming (read just before Reset or
		// Stop) is dropped: only the current deadline's counts.
		if t.armed && !now.Before(t.deadline) {
			t.armed = false
			select {
			case t.ch <- now:
			default:
			}
		}
		t.mu.Unlock()
	}
}

func (t *fdTimer) C() <-chan time.Time { return t.ch }

// settime arms (d > 0) or disarms (d == 0) the timerfd; mu is held.
func (t *fdTimer) settime(d time.Duration) {
	if t.closed {
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	_ = t.rc.Control(func(fd uintptr) {
		_, _, _ = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	})
}

// Reset implements Timer: after it returns, C delivers nothing of an
// earlier arming.
func (t *fdTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.armed
	t.drain()
	t.armed, t.deadline = true, time.Now().Add(d)
	t.settime(max(d, 1)) // 0 would disarm: fire at once instead
	return was
}

// Stop implements Timer.
func (t *fdTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.armed
	t.armed = false
	t.drain()
	t.settime(0)
	return was
}

func (t *fdTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// newSystemTimer returns the advert timer of a vhost on the system clock
// and what releases it.
func newSystemTimer() (Timer, func(), error) {
	t, err := newFDTimer()
	if err != nil {
		return nil, nil, err
	}
	return t, t.Close, nil
}

// Close releases the fd and ends the loop.
func (t *fdTimer) Close() {
	t.mu.Lock()
	t.closed, t.armed = true, false
	t.mu.Unlock()
	t.f.Close()
}
