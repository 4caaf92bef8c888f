package track

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

func TestReadFileValue(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "v")
	for _, c := range []struct {
		content *string
		v       int
		reason  string
	}{
		{nil, 0, "does not exist"},
		{ptr(""), 0, "is empty"},
		{ptr("12\n"), 12, "holds 12"},
		{ptr("  7 trailing words\n"), 7, "holds 7"},
		{ptr("0x10"), 16, "holds 16"},
		{ptr("garbage"), 0, "not an integer"},
		{ptr("-3"), 0, "below 0"},
		{ptr("1000"), 255, "capped at 255"},
		{ptr("99999999999999999999999"), 255, "capped"},
	} {
		os.Remove(p)
		if c.content != nil {
			if err := os.WriteFile(p, []byte(*c.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		v, reason := readFileValue(p)
		if v != c.v || !strings.Contains(reason, c.reason) {
			t.Errorf("content %q: %d %q, want %d and %q", deref(c.content), v, reason, c.v, c.reason)
		}
	}
}

func ptr(s string) *string { return &s }
func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// TestFileTracker runs a file tracker on a real file: the value follows
// the file after `down` rounds, back after `up` rounds.
func TestFileTracker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "demote")
	reports := make(chan Report, 10)
	tr := Start(context.Background(), config.Track{Name: "f", Type: config.TrackFile, Path: p,
		Interval: 50 * time.Millisecond, Down: 2, Up: 3}, Env{}, func(r Report) { reports <- r })
	defer tr.Stop()
	waitState(t, tr, StateUp, 0)
	os.WriteFile(p, []byte("5\n"), 0o644)
	r := waitReport(t, reports)
	if !r.Down || r.Value != 5 || r.Name != "f" || r.Group != "carp" || !strings.Contains(r.Reason, "holds 5 for 2 rounds") {
		t.Fatalf("report %+v", r)
	}
	// A lower value needs `up` rounds.
	os.WriteFile(p, []byte("3\n"), 0o644)
	r = waitReport(t, reports)
	if !r.Down || r.Value != 3 || !strings.Contains(r.Reason, "holds 3 for 3 rounds") {
		t.Fatalf("report %+v", r)
	}
	os.Remove(p)
	r = waitReport(t, reports)
	if r.Down || r.Value != 0 {
		t.Fatalf("report %+v", r)
	}
	if st := tr.Status(); st.State != StateUp || st.Rounds < 5 || st.Bad < 2 {
		t.Fatalf("status %+v", st)
	}
}

func waitReport(t *testing.T, ch <-chan Report) Report {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10 s")
	}
	return Report{}
}

func waitState(t *testing.T, tr *Tracker, state string, value int) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := tr.Status()
		if st.State == state && st.Value == value {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s value %d after 10 s, want %s %d (%+v)", st.State, st.Value, state, value, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFileTrackerResume: a tracker started with Env.Resume (a reload
// changed a tracker that was down) starts down with that value, reports
// nothing while its rounds agree, and reports up after `up` good rounds.
func TestFileTrackerResume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "demote")
	os.WriteFile(p, []byte("5\n"), 0o644)
	reports := make(chan Report, 10)
	tr := Start(context.Background(), config.Track{Name: "f", Type: config.TrackFile, Path: p,
		Interval: 50 * time.Millisecond, Down: 2, Up: 3}, Env{Resume: 5}, func(r Report) { reports <- r })
	defer tr.Stop()
	if st := tr.Status(); st.State != StateDown || st.Value != 5 {
		t.Fatalf("at start: %+v, want down with 5", st)
	}
	for deadline := time.Now().Add(10 * time.Second); tr.Status().Rounds < 3; {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 3 rounds in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-reports:
		t.Fatalf("report %+v while the file still holds the resumed value", r)
	default:
	}
	os.Remove(p)
	r := waitReport(t, reports)
	if r.Down || r.Value != 0 || !strings.Contains(r.Reason, "for 3 rounds") {
		t.Fatalf("report %+v, want up after 3 rounds", r)
	}
}
