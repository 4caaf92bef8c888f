package ctsync

// The engine's time. Run reads the clock and waits on its timers only
// through Clock, so that tests can drive it (ctsynctest.Clock). The
// interface uses only the standard library's types, so that a fake needs
// no import of this package.

import "time"

// Clock is time as the engine sees it; Config.Clock nil is the real one.
type Clock interface {
	Now() time.Time
	// Timer delivers its time on c once, d from now, unless stopped.
	Timer(d time.Duration) (c <-chan time.Time, stop func())
	// Ticker delivers its time on c every d until stopped.
	Ticker(d time.Duration) (c <-chan time.Time, stop func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

func (realClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
