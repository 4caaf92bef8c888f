package openwrt

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// DefaultHotplugCall is OpenWrt's hotplug dispatcher: it sources every
// script in /etc/hotplug.d/<subsystem>/ in order (openwrt.md §4.5).
const DefaultHotplugCall = "/sbin/hotplug-call"

// HotplugSubsystem is the directory name under /etc/hotplug.d for carpd's
// events.
const HotplugSubsystem = "carp"

// Hotplug runs hotplug-call for each event on its own goroutine, one event
// at a time in the order they were queued, each bounded by a timeout, so a
// slow or hung admin script never blocks CARP. The queue is bounded too:
// when it is full the oldest event is dropped and counted (a flapping vhid
// must not grow memory without limit; the newest state is what matters).
type Hotplug struct {
	path    string
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex // guards queue, dropped and closed
	queue   [][]string
	dropped uint64
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// hotplugQueueLen bounds the events waiting for hotplug-call.
const hotplugQueueLen = 64

// NewHotplug starts the runner. path is the hotplug-call program; when it
// does not exist (plain Linux without OpenWrt's base-files) events are
// dropped with a debug message. timeout bounds each call.
func NewHotplug(path string, timeout time.Duration, log *slog.Logger) *Hotplug {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hotplug{path: path, timeout: timeout, log: log.With("op", "hotplug"),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.run()
	return h
}

// Event queues one call with env added to a minimal environment, for
// example ACTION=MASTER VHID=1 INTERFACE=br-lan VIPS="192.168.1.1/24".
// It never blocks.
func (h *Hotplug) Event(env ...string) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if len(h.queue) == hotplugQueueLen {
		h.queue = h.queue[1:]
		h.dropped++
	}
	h.queue = append(h.queue, env)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (h *Hotplug) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Close runs the events already queued, then stops. It waits at most one
// timeout per queued event.
func (h *Hotplug) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		<-h.done
		return
	}
	h.closed = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	<-h.done
}

func (h *Hotplug) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			closed := h.closed
			h.mu.Unlock()
			if closed {
				return
			}
			<-h.wake
			continue
		}
		env := h.queue[0]
		h.queue = h.queue[1:]
		h.mu.Unlock()
		h.call(env)
	}
}

func (h *Hotplug) call(env []string) {
	if _, err := os.Stat(h.path); errors.Is(err, fs.ErrNotExist) {
		h.log.Debug("no hotplug-call; event not delivered", "path", h.path)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.path, HotplugSubsystem)
	// Like keepalived's `env -i`: only what hotplug scripts expect.
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOTPLUG_TYPE=" + HotplugSubsystem}, env...)
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		h.log.Warn("hotplug scripts timed out and were killed", "env", env, "timeout", h.timeout)
	case err != nil:
		h.log.Warn("hotplug scripts failed", "env", env, "err", err, "output", string(out))
	default:
		h.log.Debug("hotplug scripts ran", "env", env, "took", time.Since(start))
	}
}
