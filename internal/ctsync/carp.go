package ctsync

// CARP states between the two routers (docs/sync-protocol.md#carp-states):
// each side tells its peer the state of every vhid it runs, in CARP
// records of frames of their own, at once when they change and every
// carpEvery while the session is up; the daemon compares them with its
// own to see a split brain (two masters) that CARP alone cannot see
// while the partition lasts.

import (
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

const (
	// carpEvery: our states go again this often (the frames are not
	// acknowledged; a lost one is repaired by the next).
	carpEvery = 2 * time.Second
	// carpStale: a state of the peer not heard again for this long is
	// no longer known (three periods: one or two lost frames are fine).
	carpStale = 3 * carpEvery
	// maxPeerCarp bounds the peer's states we keep.
	maxPeerCarp = 1024
)

// PeerCarpState is one of the peer's vhids as it last told us.
type PeerCarpState struct {
	wire.CarpState
	// At is when it was last heard (the engine's clock).
	At time.Time
}

type carpKey struct {
	iface string
	vhid  uint8
}

// SetCarp sets the CARP states this router tells its peer, and has them
// sent at once. Safe from any goroutine; it never blocks. Entries that
// the CARP record cannot carry are left out.
func (e *Engine) SetCarp(states []wire.CarpState) {
	out := make([]wire.CarpState, 0, len(states))
	for _, s := range states {
		if s.Valid() {
			out = append(out, s)
		}
	}
	e.mu.Lock()
	e.carpOut = out
	e.mu.Unlock()
	select {
	case e.carpKick <- struct{}{}:
	default:
	}
}

// PeerCarp returns the peer's CARP states heard within carpStale while
// the session is up: nil when the sync link is down or the peer does not
// send them (an older carpd).
func (e *Engine) PeerCarp() []PeerCarpState {
	now := e.cfg.Clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.st.PeerUp {
		return nil
	}
	var out []PeerCarpState
	for k, at := range e.carpIn {
		if now.Sub(at.At) < carpStale {
			out = append(out, at)
		} else {
			delete(e.carpIn, k)
		}
	}
	return out
}

// sendCarp sends our states, in as many records (and frames) as they
// need, when the session is up.
func (e *Engine) sendCarp(now time.Time) {
	e.mu.Lock()
	states := e.carpOut
	e.mu.Unlock()
	if len(states) == 0 || !e.canSend(now) {
		return
	}
	e.lastCarp = now
	for len(states) > 0 {
		n := min(len(states), wire.MaxCarpStates)
		e.sendControl(now, false, wire.Record{Type: wire.RecordCarp, Carp: states[:n]})
		states = states[n:]
	}
}

// carpTimer repeats our states every carpEvery.
func (e *Engine) carpTimer(now time.Time) {
	if now.Sub(e.lastCarp) >= carpEvery {
		e.sendCarp(now)
	}
}

// peerCarp takes in the peer's states.
func (e *Engine) peerCarp(states []wire.CarpState, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.carpIn == nil {
		e.carpIn = map[carpKey]PeerCarpState{}
	}
	for _, s := range states {
		k := carpKey{s.Interface, s.VHID}
		if _, ok := e.carpIn[k]; !ok && len(e.carpIn) >= maxPeerCarp {
			continue
		}
		e.carpIn[k] = PeerCarpState{CarpState: s, At: now}
	}
}
