package carp

import "time"

// Clock is the time source of a VHost: its timer, the time of its
// transitions and the clock floor of the counter's sequence. The daemon
// runs on the real clock (the default); tests pass a fake one
// (carptest.Clock) so they step through protocol time without sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a running timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock, with the semantics of time.Timer
// since Go 1.23: after Reset or Stop returns, C delivers no stale value.
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
func (r realTimer) Stop() bool                 { return r.t.Stop() }

// VHostOption changes a default of NewVHost.
type VHostOption func(*VHost)

// WithClock makes the VHost read time and arm its timers on c instead of
// the system clock.
func WithClock(c Clock) VHostOption {
	return func(v *VHost) {
		if c != nil {
			v.clk = c
		}
	}
}
