package track

import (
	"testing"
	"time"
)

func TestMachineHysteresis(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := machine{down: 3, up: 2, state: StateInit, since: t0}
	now := t0
	step := func(v int) bool { now = now.Add(time.Second); return m.observe(v, now) }

	if step(0) || m.state != StateUp || m.value != 0 {
		t.Fatalf("first good round: changed or state %s value %d", m.state, m.value)
	}
	// Two bad rounds, a good one: the count starts again.
	for i, v := range []int{1, 1, 0, 1, 1} {
		if step(v) {
			t.Fatalf("round %d (%d): changed, state %s", i, v, m.state)
		}
	}
	if !step(1) || m.state != StateDown || m.value != 1 || !m.since.Equal(now) {
		t.Fatalf("third bad round in a row: state %s value %d since %v", m.state, m.value, m.since)
	}
	// Down stays down on one good round, more bad rounds are no change.
	for i, v := range []int{1, 0, 1, 1} {
		if step(v) {
			t.Fatalf("down, round %d (%d) changed", i, v)
		}
	}
	if step(0) || !step(0) || m.state != StateUp || m.value != 0 {
		t.Fatalf("two good rounds: state %s value %d", m.state, m.value)
	}
}

// TestMachineFlapping: a round that alternates never changes the state,
// whatever the pattern short of `down` bad rounds in a row.
func TestMachineNeverFlapsOnOneBadRound(t *testing.T) {
	m := machine{down: 3, up: 3, state: StateInit}
	now := time.Unix(0, 0)
	pattern := []int{0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0}
	for i := 0; i < 1000; i++ {
		if m.observe(pattern[i%len(pattern)], now) {
			t.Fatalf("round %d changed the state to %s", i, m.state)
		}
	}
	if m.state != StateUp {
		t.Fatalf("state %s, want up", m.state)
	}
}

// TestMachineValues: a file tracker's values; a rise needs `down` rounds of
// the same new value, a fall `up` rounds.
func TestMachineValues(t *testing.T) {
	m := machine{down: 2, up: 3, state: StateInit}
	now := time.Unix(0, 0)
	seq := []struct {
		v       int
		changed bool
		value   int
	}{
		{5, false, 0}, {7, false, 0}, {7, true, 7}, // 5 then 7: 7 seen twice
		{3, false, 7}, {3, false, 7}, {3, true, 3}, // a fall needs up=3
		{0, false, 3}, {0, false, 3}, {4, false, 3}, {4, true, 4},
		{0, false, 4}, {0, false, 4}, {0, true, 0},
	}
	for i, s := range seq {
		if got := m.observe(s.v, now); got != s.changed || m.value != s.value {
			t.Fatalf("step %d (%d): changed %v value %d, want %v %d", i, s.v, got, m.value, s.changed, s.value)
		}
	}
	if m.state != StateUp {
		t.Fatalf("state %s", m.state)
	}
}
