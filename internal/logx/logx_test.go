package logx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests compare logx with log/slog's TextHandler: the same calls must
// write the same lines, but for the time stamp, which is checked apart.

type stringer uint8

func (s stringer) String() string { return fmt.Sprintf("S<%d>", uint8(s)) }

type named []byte

type textErr struct{}

func (textErr) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

type ptrText struct{ s string }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte(p.s), nil }

type panicky struct{}

func (panicky) String() string { panic("boom") }

type panicText struct{}

func (panicText) MarshalText() ([]byte, error) { panic("text boom") }

var when = time.Date(2026, 12, 8, 1, 2, 3, 456789012, time.FixedZone("X", 3600))

// cases are argument lists, each logged by both loggers.
var cases = [][]any{
	nil,
	{"k", "v"},
	{"empty", ""},
	{"space", "a b", "quote", `say "hi"`, "eq", "a=b", "backslash", `a\b`},
	{"tab", "a\tb", "nl", "a\nb", "ctl", "a\x01b", "del", "a\x7fb"},
	{"utf8", "grüße", "nbsp", "a\u00a0b", "zw", "a\u200bb", "bad", "a\xffb", "emoji", "🙂"},
	{"with space", 1, "eq=key", 2, "", 3, "k\"q", 4},
	{"int", 1, "neg", -7, "i8", int8(-8), "i16", int16(300), "i32", int32(-70000), "i64", int64(1) << 40},
	{"uint", uint(1), "u8", uint8(255), "u16", uint16(65535), "u32", uint32(1) << 31, "u64", ^uint64(0), "uptr", uintptr(12)},
	{"f64", 1.5, "f64big", 1e21, "f64small", 1e-7, "f32", float32(0.1), "nan", 0.0 / zero(), "inf", 1 / zero()},
	{"true", true, "false", false},
	{"dur", 1500 * time.Millisecond, "zero", time.Duration(0), "small", 3 * time.Microsecond, "neg", -time.Minute},
	{"time", when, "utc", when.UTC(), "zero", time.Time{}, "mono", time.Now().Add(-time.Hour).Truncate(0)},
	{"err", errors.New("boom: no such device"), "wrapped", fmt.Errorf("sync: %w", net.ErrClosed), "nilerr", error(nil)},
	{"nil", nil, "nilptr", (*int)(nil)},
	{"addr", netip.MustParseAddr("10.0.0.1"), "v6", netip.MustParseAddr("fe80::1%eth0"), "zeroaddr", netip.Addr{}},
	{"prefix", netip.MustParsePrefix("10.0.0.0/24"), "ap", netip.MustParseAddrPort("[::1]:7777")},
	{"ip", net.ParseIP("192.0.2.1"), "mac", net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}},
	{"bytes", []byte("a\x00b"), "named", named("x y"), "nilbytes", []byte(nil)},
	{"strs", []string{"a", "b"}, "one", []string{"a"}, "ints", []int{1, 2}, "map", map[string]int{"a": 1}},
	{"struct", struct {
		A int
		B string
	}{1, "x"}, "ptr", &struct{ A int }{2}},
	{"stringer", stringer(3), "state", stringer(0)},
	{"texterr", textErr{}, "ptrtext", &ptrText{"hello world"}, "nilptrtext", (*ptrText)(nil)},
	{"panicky", panicky{}, "panictext", panicText{}},
	{"odd"},
	{"k", 1, "dangling"},
	{42, "x", "k", "v"},
	{errors.New("e"), 1},
	{"", nil, "after", "empty pair"},
	{"", 0, "after", "empty key with a value"},
}

func zero() float64 { return 0 }

// timeRE matches the time stamp that begins every line.
var timeRE = regexp.MustCompile(`^time=\S+ `)

// pair returns a logx and an slog logger writing at level into two buffers.
func pair(level Level) (*Logger, *slog.Logger, *bytes.Buffer, *bytes.Buffer) {
	var a, b bytes.Buffer
	return New(NewTextHandler(&a, &HandlerOptions{Level: level})),
		slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.Level(level)})), &a, &b
}

// untimed drops the time stamps, after checking that each line has one.
func untimed(t *testing.T, out string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.SplitAfter(out, "\n") {
		if l == "" {
			continue
		}
		if !timeRE.MatchString(l) {
			t.Errorf("line without a time stamp: %q", l)
		}
		lines = append(lines, timeRE.ReplaceAllString(l, ""))
	}
	return strings.Join(lines, "")
}

func TestSameAsSlog(t *testing.T) {
	for i, args := range cases {
		l, s, a, b := pair(LevelDebug)
		for _, msg := range []string{"hello", "state changed", "", `a "quoted" msg=x`} {
			l.Info(msg, args...)
			s.Info(msg, args...)
		}
		l.Debug("d", args...)
		s.Debug("d", args...)
		l.Warn("w", args...)
		s.Warn("w", args...)
		l.Error("e", args...)
		s.Error("e", args...)
		if got, want := untimed(t, a.String()), untimed(t, b.String()); got != want {
			t.Errorf("case %d %v:\nlogx %s\nslog %s", i, args, got, want)
		}
	}
}

func TestWithSameAsSlog(t *testing.T) {
	for i, args := range cases {
		l, s, a, b := pair(LevelInfo)
		l1, s1 := l.With("iface", "eth0"), s.With("iface", "eth0")
		l2, s2 := l1.With(args...), s1.With(args...)
		l3, s3 := l2.With("vhid", 1, "state", "MASTER"), s2.With("vhid", 1, "state", "MASTER")
		for _, p := range []struct {
			l *Logger
			s *slog.Logger
		}{{l, s}, {l1, s1}, {l2, s2}, {l3, s3}, {l.With(), s.With()}} {
			p.l.Info("m", "k", "v")
			p.s.Info("m", "k", "v")
			p.l.Warn("m")
			p.s.Warn("m")
		}
		if got, want := untimed(t, a.String()), untimed(t, b.String()); got != want {
			t.Errorf("case %d %v:\nlogx %s\nslog %s", i, args, got, want)
		}
	}
}

func TestLevels(t *testing.T) {
	for _, min := range []Level{LevelDebug, LevelInfo, LevelWarn, LevelError, LevelInfo + 2, LevelError + 4} {
		l, s, a, b := pair(min)
		for lv := LevelDebug - 5; lv <= LevelError+5; lv++ {
			l.Log(context.Background(), lv, "m", "lv", int(lv))
			s.Log(context.Background(), slog.Level(lv), "m", "lv", int(lv))
			if got, want := l.Enabled(context.Background(), lv), s.Enabled(context.Background(), slog.Level(lv)); got != want {
				t.Errorf("level %v, min %v: Enabled %v, slog %v", lv, min, got, want)
			}
			if got, want := lv.String(), slog.Level(lv).String(); got != want {
				t.Errorf("Level(%d).String() = %q, slog %q", int(lv), got, want)
			}
		}
		if got, want := untimed(t, a.String()), untimed(t, b.String()); got != want {
			t.Errorf("min %v:\nlogx %s\nslog %s", min, got, want)
		}
	}
}

// TestLevelVar changes the level of a running logger, as a reload does.
func TestLevelVar(t *testing.T) {
	var a bytes.Buffer
	level := new(LevelVar)
	l := New(NewTextHandler(&a, &HandlerOptions{Level: level})).With("op", "x")
	l.Debug("hidden")
	level.Set(LevelDebug)
	l.Debug("shown")
	level.Set(LevelError)
	l.Warn("hidden")
	l.Error("shown")
	if got, want := untimed(t, a.String()), "level=DEBUG msg=shown op=x\nlevel=ERROR msg=shown op=x\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var b bytes.Buffer
	New(NewTextHandler(&b, nil)).Debug("hidden")
	New(NewTextHandler(&b, nil)).Info("shown")
	if got, want := untimed(t, b.String()), "level=INFO msg=shown\n"; got != want {
		t.Errorf("nil options: got %q, want %q", got, want)
	}
}

// TestTime compares the time stamps with slog's, for records of a known
// time, and checks that a logged line's time is now.
func TestTime(t *testing.T) {
	var b bytes.Buffer
	h := slog.NewTextHandler(&b, nil)
	for _, tm := range []time.Time{
		when, when.UTC(), when.Truncate(time.Second), when.Truncate(time.Millisecond),
		when.Add(999 * time.Microsecond), time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 1_000_000, time.FixedZone("", -(9*3600+30*60))),
		time.Now(), time.Now().In(time.Local),
	} {
		b.Reset()
		if err := h.Handle(context.Background(), slog.NewRecord(tm, slog.LevelInfo, "m", 0)); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimPrefix(strings.Fields(b.String())[0], "time=")
		if got := string(appendTime(nil, tm)); got != want {
			t.Errorf("time %v: %q, slog %q", tm, got, want)
		}
	}
	var a bytes.Buffer
	before := time.Now().Truncate(time.Millisecond)
	New(NewTextHandler(&a, nil)).Info("m")
	after := time.Now()
	stamp := strings.TrimPrefix(strings.Fields(a.String())[0], "time=")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil || at.Before(before) || at.After(after) {
		t.Errorf("time stamp %q (%v), want between %v and %v", stamp, err, before, after)
	}
}

func TestDiscard(t *testing.T) {
	for _, l := range []*Logger{New(DiscardHandler), nil, {}, New(DiscardHandler).With("a", 1)} {
		l.Error("nothing", "k", "v")
		l.Log(context.Background(), LevelError+8, "nothing")
		if l.Enabled(context.Background(), LevelError+8) {
			t.Errorf("%v: a discarding logger is enabled", l)
		}
		if w := l.With("b", 2); w != nil && w.Enabled(context.Background(), LevelError) {
			t.Errorf("With of a discarding logger is enabled")
		}
	}
}

// TestOneWritePerRecord checks that concurrent records, through loggers
// made by With from one handler, reach the writer as whole lines.
func TestOneWritePerRecord(t *testing.T) {
	w := &lineWriter{}
	root := New(NewTextHandler(w, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		l := root.With("g", g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Info("concurrent record with some length to it", "i", i)
			}
		}()
	}
	wg.Wait()
	if w.writes != 1600 || w.bad != 0 {
		t.Errorf("%d writes (%d not one whole line), want 1600 whole lines", w.writes, w.bad)
	}
}

// lineWriter counts writes that are not exactly one line; it has no lock
// of its own, so the race detector sees writes that are not serialized.
type lineWriter struct{ writes, bad int }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.writes++
	if bytes.IndexByte(p, '\n') != len(p)-1 {
		w.bad++
	}
	return len(p), nil
}

// TestWithDoesNotAlias checks that two Withs of one logger keep their own
// pairs (the second must not overwrite the first's in a shared array).
func TestWithDoesNotAlias(t *testing.T) {
	var a bytes.Buffer
	base := New(NewTextHandler(&a, nil)).With("a", 1)
	x, y := base.With("x", 1), base.With("y", 2)
	x.Info("m")
	y.Info("m")
	base.Info("m")
	if got, want := untimed(t, a.String()), "level=INFO msg=m a=1 x=1\nlevel=INFO msg=m a=1 y=2\nlevel=INFO msg=m a=1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
