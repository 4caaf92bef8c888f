package ubus_test

import (
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpd/carpd/ubus"
)

// checkLeaks fails the test if goroutines of this module are still running
// after the test and its cleanups, like wireguard-go's goroutineLeakCheck.
// Call it first, so that its cleanup runs last. Tests using it must not run
// in parallel.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := moduleGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// moduleGoroutines returns the stacks of goroutines, other than the calling
// one, running code of the ubus packages (not their tests).
func moduleGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the calling goroutine comes first
			continue
		}
		if strings.Contains(g, "carpd/carpd/ubus.") || strings.Contains(g, "carpd/carpd/ubus/ubustest.") {
			out = append(out, g)
		}
	}
	return out
}

// lockedWriter serializes writes from the Client's goroutine with the
// test's reads.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// newTestLogger logs text lines to w, guarded by mu.
func newTestLogger(mu *sync.Mutex, w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// A *slog.Logger is a Logger, as it was the type of Config.Logger before.
var _ ubus.Logger = (*slog.Logger)(nil)
