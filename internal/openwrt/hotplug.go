package openwrt

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/carpd/carpd/internal/asyncq"
	"github.com/carpd/carpd/internal/logx"
)

// HotplugSubsystem is the directory name under /etc/hotplug.d for carpd's
// events.
const HotplugSubsystem = "carp"

// Hotplug runs hotplug-call for each event on its own goroutine, one event
// at a time in the order they were queued, each bounded by a timeout, so a
// slow or hung admin script never blocks CARP. At the timeout the call and
// everything it started are stopped: hotplug-call runs in a process group
// of its own, which gets SIGTERM and, a second later, SIGKILL; the next
// event starts only then, so two runs never overlap. The queue is bounded too:
// when it is full the oldest event is dropped and counted (a flapping vhid
// must not grow memory without limit; the newest state is what matters).
type Hotplug struct {
	log *logx.Logger
	q   *asyncq.Queue[[]string]

	mu      sync.Mutex // guards path and timeout
	path    string
	timeout time.Duration
}

// hotplugQueueLen bounds the events waiting for hotplug-call.
const hotplugQueueLen = 64

// NewHotplug starts the runner. path is the hotplug-call program; when it
// does not exist (plain Linux without OpenWrt's base-files) events are
// dropped with a debug message. timeout bounds each call.
func NewHotplug(path string, timeout time.Duration, log *logx.Logger) *Hotplug {
	if log == nil {
		log = logx.New(logx.DiscardHandler)
	}
	h := &Hotplug{path: path, timeout: timeout, log: log.With("op", "hotplug")}
	h.q = asyncq.New(hotplugQueueLen, h.call)
	return h
}

// Configure changes the program and timeout (a reload): the next call
// uses them, also for events queued before. Calls still run one at a
// time.
func (h *Hotplug) Configure(path string, timeout time.Duration) {
	h.mu.Lock()
	h.path, h.timeout = path, timeout
	h.mu.Unlock()
}

// Event queues one call with env added to a minimal environment, for
// example ACTION=MASTER VHID=1 INTERFACE=br-lan VIPS="192.168.1.1/24".
// It never blocks.
func (h *Hotplug) Event(env ...string) { h.q.Push(env) }

// Close runs the events already queued, then stops. It waits at most one
// timeout per queued event.
func (h *Hotplug) Close() { h.q.Close() }

func (h *Hotplug) call(env []string) {
	h.mu.Lock()
	c := struct {
		path    string
		timeout time.Duration
	}{h.path, h.timeout}
	h.mu.Unlock()
	if _, err := os.Stat(c.path); errors.Is(err, fs.ErrNotExist) {
		h.log.Debug("no hotplug-call; event not delivered", "path", c.path)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// Like keepalived's `env -i`: only what hotplug scripts expect.
	// The callers' keys (ACTION, VHID, ...) never repeat these two.
	cmdEnv := append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOTPLUG_TYPE=" + HotplugSubsystem}, env...)
	start := time.Now()
	out, err := runCombined(ctx, c.path, []string{HotplugSubsystem}, cmdEnv, time.Second)
	switch {
	case ctx.Err() != nil:
		h.log.Warn("hotplug scripts timed out and were killed", "env", env, "timeout", c.timeout)
	case err != nil:
		h.log.Warn("hotplug scripts failed", "env", env, "err", err, "output", string(out))
	default:
		h.log.Debug("hotplug scripts ran", "env", env, "took", time.Since(start))
	}
}
