//go:build linux

package main

import (
	"context"
	"sync"
	"time"
)

// The machine the benchmark runs on may be shared: other load delays the
// daemons, the prober and the kernel alike. The benchmark lowers its own
// niceness (inherited by every daemon it starts) and watches for stalls, so
// that a disturbed trial is flagged instead of silently skewing a figure.

// renice sets the niceness of every thread of this process; threads and

// stallStep is the stall monitor's sleep; a wake-up later than
// stallReport after it is recorded.
const (
	stallStep   = 5 * time.Millisecond
	stallReport = 20 * time.Millisecond
	maxStalls   = 1 << 14
)

// A stallMonitor sleeps stallStep at a time and records every wake-up that
// came late: the scheduler did not run this process (or the machine did not
// run at all) for that long.
type stallMonitor struct {
	mu     sync.Mutex
	stalls []stall
}

type stall struct {
	at   time.Time // when the late wake-up happened
	late time.Duration
}

func startStallMonitor(ctx context.Context) *stallMonitor {
	m := &stallMonitor{}
	go func() {
		prev := time.Now()
		for ctx.Err() == nil {
			time.Sleep(stallStep)
			now := time.Now()
			if late := now.Sub(prev) - stallStep; late > stallReport {
				m.mu.Lock()
				if len(m.stalls) < maxStalls {
					m.stalls = append(m.stalls, stall{at: now, late: late})
				}
				m.mu.Unlock()
			}
			prev = now
		}
	}()
	return m
}

// worst returns the longest stall that overlapped [from, to].
func (m *stallMonitor) worst(from, to time.Time) time.Duration {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var w time.Duration
	for _, s := range m.stalls {
		if s.at.After(from) && s.at.Add(-s.late).Before(to) {
			w = max(w, s.late)
		}
	}
	return w
}
