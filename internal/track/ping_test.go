package track

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CARPD_REQUIRE_NETNS") == "1" {
			t.Fatal("raw ICMP sockets need root (CARPD_REQUIRE_NETNS=1)")
		}
		t.Skip("raw ICMP sockets need root")
	}
}

// TestPingLoopback pings 127.0.0.1 and ::1 through real raw sockets: both
// answer, every round is good, RTTs are measured.
func TestPingLoopback(t *testing.T) {
	needRoot(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			cfg := config.Track{Name: "lo", Type: config.TrackPing, Targets: []netip.Addr{netip.MustParseAddr(addr)},
				Interval: 50 * time.Millisecond, Device: "lo"}
			tr := Start(context.Background(), cfg, Env{}, func(r Report) { t.Errorf("report %+v", r) })
			defer tr.Stop()
			deadline := time.Now().Add(10 * time.Second)
			for {
				st := tr.Status()
				if st.Good >= 5 {
					if st.Bad != 0 || st.State != StateUp || st.Error != "" || len(st.Targets) != 1 {
						t.Fatalf("status %+v", st)
					}
					tg := st.Targets[0]
					if tg.Address != addr || tg.Received < 5 || tg.Sent < tg.Received || tg.RTTms <= 0 || tg.RTTms > 100 {
						t.Fatalf("target %+v", tg)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no 5 good rounds in 10 s: %+v", st)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestPingTwoTrackers: two trackers probe the same address at once. A raw
// ICMP socket sees every echo reply of the host, so each sees the other's
// replies: they are dropped and counted as wrong_id, and each tracker's own
// rounds stay good.
func TestPingTwoTrackers(t *testing.T) {
	needRoot(t)
	cfg := config.Track{Type: config.TrackPing, Targets: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Interval: 50 * time.Millisecond}
	a, b := cfg, cfg
	a.Name, b.Name = "a", "b"
	ta := Start(context.Background(), a, Env{}, func(r Report) { t.Errorf("report %+v", r) })
	defer ta.Stop()
	tb := Start(context.Background(), b, Env{}, func(r Report) { t.Errorf("report %+v", r) })
	defer tb.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sa, sb := ta.Status(), tb.Status()
		if sa.Dropped[dropID] > 0 && sb.Dropped[dropID] > 0 && sa.Good >= 5 && sb.Good >= 5 {
			if sa.Bad+sb.Bad != 0 {
				t.Fatalf("bad rounds: %+v %+v", sa, sb)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %+v\n%+v", sa, sb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
