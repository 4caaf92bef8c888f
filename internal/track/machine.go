package track

import (
	"fmt"
	"time"
)

// machine is the hysteresis of a tracker, a pure state machine: each round
// brings a value (0 = good); the tracker's value changes to a new one only
// after that value came in enough consecutive rounds: `down` rounds for a
// rise (a bad round after good ones, or a file's larger integer), `up`
// rounds for a fall. One odd round never changes anything.
type machine struct {
	down, up int
	state    string // StateInit, StateUp, StateDown
	value    int
	since    time.Time

	cand  int // the value the last rounds brought, when ≠ value
	count int // how many consecutive rounds brought cand
}

// observe feeds one round's value and reports whether the tracker's state
// (up/down, not counting init → up) or value changed.
func (m *machine) observe(v int, now time.Time) (changed bool) {
	if v == m.value {
		m.count = 0
		if m.state == StateInit && v == 0 {
			// The first good round settles a starting tracker: nothing
			// was demoted, so it is no change for the receiver.
			m.state, m.since = StateUp, now
		}
		return false
	}
	if m.count > 0 && v == m.cand {
		m.count++
	} else {
		m.cand, m.count = v, 1
	}
	need := m.up
	if v > m.value {
		need = m.down
	}
	if m.count < need {
		return false
	}
	m.value, m.count = v, 0
	state := StateUp
	if v > 0 {
		state = StateDown
	}
	m.state, m.since = state, now
	return true
}

// pending describes a change under way ("2 of 3 bad rounds"), "" when none.
func (m *machine) pending() string {
	if m.count == 0 {
		return ""
	}
	need := m.up
	if m.cand > m.value {
		need = m.down
	}
	return fmt.Sprintf("%d of %d rounds toward %d", m.count, need, m.cand)
}
