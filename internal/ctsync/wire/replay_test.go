package wire

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestReplayWindowBasics(t *testing.T) {
	var w ReplayWindow
	steps := []struct {
		pn   uint64
		want bool
	}{
		{0, true}, {0, false}, {1, true}, {3, true}, {2, true}, {2, false},
		{ReplayWindowSize + 3, true}, // slides: 3 is now exactly at the edge
		{3, false}, {4, true}, {4, false}, {5, true},
		{ReplayWindowSize + 2, true}, {ReplayWindowSize + 2, false},
		{math.MaxUint64, true}, {math.MaxUint64, false}, {math.MaxUint64 - 1, true},
		{math.MaxUint64 - ReplayWindowSize, false}, {math.MaxUint64 - ReplayWindowSize + 1, true},
		{100, false},
	}
	for i, s := range steps {
		if c := w.Check(s.pn); c != s.want {
			t.Fatalf("step %d: Check(%d) = %v", i, s.pn, c)
		}
		if got := w.Accept(s.pn); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.pn, got, s.want)
		}
	}
	w.reset()
	if !w.Accept(0) || !w.Accept(100) {
		t.Fatal("Reset did not empty the window")
	}
}

// TestReplayWindowModel compares the window with a map-based model on
// random traffic: mostly ascending, with reordering, duplicates and jumps.
func TestReplayWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var w ReplayWindow
		seen := map[uint64]bool{}
		var max uint64
		var any bool
		next := uint64(rng.IntN(3)) << (round % 40)
		for i := range 20000 {
			var pn uint64
			switch r := rng.IntN(100); {
			case r < 60:
				pn = next
				next++
			case r < 80 && next > 0:
				pn = next - 1 - uint64(rng.IntN(int(min(next, 3000))))
			case r < 90 && next > 0:
				pn = next - 1 - uint64(rng.IntN(int(min(next, 64))))
			case r < 95:
				next += uint64(rng.IntN(2500))
				pn = next
			default:
				pn = next + uint64(rng.IntN(100))
			}
			want := !seen[pn] && (!any || pn > max || max-pn < ReplayWindowSize)
			if got := w.Accept(pn); got != want {
				t.Fatalf("round %d step %d: Accept(%d) = %v, want %v (max %d)", round, i, pn, got, want, max)
			}
			if want {
				seen[pn] = true
				if !any || pn > max {
					max = pn
				}
				any = true
			}
		}
	}
}
