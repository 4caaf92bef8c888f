package daemon

import (
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// TestConfirmBound: the hold on a takeover lasts as long as the slowest
// tracker of the vhid's groups may need to go down after a probe at once:
// a ping tracker's suspect rounds are back to back, other types keep to
// their interval; capped at maxHold; 0 without a tracker.
func TestConfirmBound(t *testing.T) {
	ve := &vhostEntry{cfg: inGroups(vhid("dev0", 1, 0, "pw", "10.0.0.1/24"), "wan")}
	for _, tc := range []struct {
		name string
		tr   config.Track
		want time.Duration
	}{
		{"none", config.Track{}, 0},
		{"ping defaults", config.Track{Type: config.TrackPing}, 4*time.Second + 200*time.Millisecond},
		{"ping fast", config.Track{Type: config.TrackPing, Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond},
			4*100*time.Millisecond + 50*time.Millisecond},
		// Rounds at 0, 5 s and 10 s, the third bad within its 1 s timeout.
		{"script slow", config.Track{Type: config.TrackScript, Interval: 5 * time.Second, Timeout: time.Second},
			2*5*time.Second + time.Second + time.Second},
		{"file defaults", config.Track{Type: config.TrackFile}, 2*time.Second + time.Second + 200*time.Millisecond},
		{"capped", config.Track{Type: config.TrackScript, Interval: time.Hour, Down: 10}, maxHold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(config.Default(), Options{})
			if tc.tr.Type != "" {
				tc.tr.Name, tc.tr.Group = "x", "wan"
				d.trackers["x"] = &trackerEntry{cfg: tc.tr, group: "wan"}
			}
			if got := d.confirmBound(ve); got != tc.want {
				t.Errorf("bound %v, want %v", got, tc.want)
			}
		})
	}
}
