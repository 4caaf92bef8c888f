// Package logx is carpd's logger: the part of log/slog that carpd uses,
// writing the same lines as slog's TextHandler, in a fraction of its size
// (log/slog cost 131,072 B of the stripped mips_24kc binary; see
// docs/size-budget.md).
//
// The API has slog's shape, so that code moves between the two by changing
// the import and the package name (scripts/logconv does it):
//
//	level := new(logx.LevelVar)
//	log := logx.New(logx.NewTextHandler(os.Stderr, &logx.HandlerOptions{Level: level}))
//	log = log.With("iface", "eth0")
//	log.Info("state changed", "vhid", 1, "state", "MASTER")
//
// writes
//
//	time=2026-12-08T01:02:03.456+01:00 level=INFO msg="state changed" iface=eth0 vhid=1 state=MASTER
//
// Arguments are key, value pairs as in slog: a string key and its value; a
// key without a value, or a value where a key should be, is logged under
// "!BADKEY". Values are written as slog's TextHandler writes them: numbers,
// booleans and durations as strconv and Duration.String write them, times in
// RFC 3339 with milliseconds, an encoding.TextMarshaler as its text, a byte
// slice as a quoted string, anything else (errors included) as fmt's %+v;
// strings and keys are quoted with strconv.Quote when they are empty or
// hold a space, '"', '=', a control character or a character that is not
// printable. There are no groups, no Attr values, no LogValuer and no
// JSON output: carpd uses none of them.
package logx

import (
	"context"
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// A Level is the importance of a log record, with slog's values.
type Level int

// The levels carpd uses; a handler writes the records at or above its level.
const (
	LevelDebug Level = -4
	LevelInfo  Level = 0
	LevelWarn  Level = 4
	LevelError Level = 8
)

// String returns the level's name as slog writes it: DEBUG, INFO, WARN,
// ERROR, or the nearest of those below it with an offset (INFO+2, DEBUG-1).
func (l Level) String() string {
	name := func(base string, off Level) string {
		if off == 0 {
			return base
		}
		s := strconv.Itoa(int(off))
		if off > 0 {
			s = "+" + s
		}
		return base + s
	}
	switch {
	case l < LevelInfo:
		return name("DEBUG", l-LevelDebug)
	case l < LevelWarn:
		return name("INFO", l-LevelInfo)
	case l < LevelError:
		return name("WARN", l-LevelWarn)
	default:
		return name("ERROR", l-LevelError)
	}
}

// Level returns l itself, so that a Level is a Leveler.
func (l Level) Level() Level { return l }

// A Leveler gives a handler's minimum level: a Level, or a *LevelVar to
// change it while the program runs.
type Leveler interface {
	Level() Level
}

// A LevelVar is a Level that can be changed while loggers use it. Its zero
// value is LevelInfo.
type LevelVar struct {
	v atomic.Int64
}

// Level returns the current level.
func (v *LevelVar) Level() Level { return Level(v.v.Load()) }

// Set changes the level.
func (v *LevelVar) Set(l Level) { v.v.Store(int64(l)) }

// HandlerOptions configures NewTextHandler.
type HandlerOptions struct {
	// Level is the minimum level written; nil means LevelInfo.
	Level Leveler
}

// A Handler writes records as lines of key=value pairs. All Handlers made
// from one NewTextHandler (by Logger.With) share one mutex, and each record
// is one Write, as with slog's TextHandler.
type Handler struct {
	w     io.Writer
	mu    *sync.Mutex
	level Leveler
	attrs []byte // the With pairs, formatted, each with a leading space
}

// NewTextHandler returns a Handler that writes to w; opts may be nil.
func NewTextHandler(w io.Writer, opts *HandlerOptions) *Handler {
	h := &Handler{w: w, mu: new(sync.Mutex)}
	if opts != nil {
		h.level = opts.Level
	}
	return h
}

// DiscardHandler discards every record: New(DiscardHandler) is a Logger
// that writes nothing.
var DiscardHandler *Handler

// enabled reports whether h writes records of level l.
func (h *Handler) enabled(l Level) bool {
	if h == nil {
		return false
	}
	min := LevelInfo
	if h.level != nil {
		min = h.level.Level()
	}
	return l >= min
}

// A Logger writes records to its Handler. The zero Logger, a nil *Logger
// and New(DiscardHandler) write nothing.
type Logger struct {
	h *Handler
}

// New returns a Logger that writes to h.
func New(h *Handler) *Logger { return &Logger{h: h} }

// With returns a Logger whose records carry the key, value pairs args
// after their own message (before the record's own pairs).
func (l *Logger) With(args ...any) *Logger {
	if l == nil || l.h == nil || len(args) == 0 {
		return l
	}
	h := *l.h
	h.attrs = appendArgs(h.attrs[:len(h.attrs):len(h.attrs)], args)
	return &Logger{h: &h}
}

// Enabled reports whether l writes records of level.
func (l *Logger) Enabled(_ context.Context, level Level) bool {
	return l != nil && l.h.enabled(level)
}

// Debug logs at LevelDebug.
func (l *Logger) Debug(msg string, args ...any) { l.log(LevelDebug, msg, args) }

// Info logs at LevelInfo.
func (l *Logger) Info(msg string, args ...any) { l.log(LevelInfo, msg, args) }

// Warn logs at LevelWarn.
func (l *Logger) Warn(msg string, args ...any) { l.log(LevelWarn, msg, args) }

// Error logs at LevelError.
func (l *Logger) Error(msg string, args ...any) { l.log(LevelError, msg, args) }

// Log logs at level.
func (l *Logger) Log(_ context.Context, level Level, msg string, args ...any) {
	l.log(level, msg, args)
}

func (l *Logger) log(level Level, msg string, args []any) {
	if l == nil || !l.h.enabled(level) {
		return
	}
	h := l.h
	b := make([]byte, 0, 256)
	b = append(b, "time="...)
	b = appendTime(b, time.Now())
	b = append(b, " level="...)
	b = appendString(b, level.String())
	b = append(b, " msg="...)
	b = appendString(b, msg)
	b = append(b, h.attrs...)
	b = appendArgs(b, args)
	b = append(b, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	h.w.Write(b)
}

// badKey is the key of a value that has none.
const badKey = "!BADKEY"

// appendArgs appends each key, value pair of args as " key=value".
func appendArgs(b []byte, args []any) []byte {
	for len(args) > 0 {
		var key string
		var val any
		switch k := args[0].(type) {
		case string:
			if len(args) == 1 {
				key, val, args = badKey, k, nil
			} else {
				key, val, args = k, args[1], args[2:]
			}
		default:
			key, val, args = badKey, k, args[1:]
		}
		if key == "" && val == nil {
			continue // slog elides an empty pair
		}
		b = append(b, ' ')
		b = appendString(b, key)
		b = append(b, '=')
		b = appendValue(b, val)
	}
	return b
}

// appendValue appends v as slog's TextHandler writes it.
func appendValue(b []byte, v any) (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			// A method of v panicked; like slog (and fmt), write <nil>
			// for a nil pointer and the panic otherwise.
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
				out = appendString(b, "<nil>")
				return
			}
			out = appendString(b, fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8:
		return strconv.AppendInt(b, int64(v), 10)
	case int16:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uintptr:
		return strconv.AppendUint(b, uint64(v), 10)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 64)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Duration:
		return append(b, v.String()...)
	case time.Time:
		return appendTime(b, v)
	case encoding.TextMarshaler:
		text, err := v.MarshalText()
		if err != nil {
			return appendString(b, fmt.Sprintf("!ERROR:%v", err))
		}
		return appendString(b, string(text))
	case []byte:
		return strconv.AppendQuote(b, string(v))
	}
	// A named byte slice is a byte slice too, as in fmt's %s.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return strconv.AppendQuote(b, string(rv.Bytes()))
	}
	return appendString(b, fmt.Sprintf("%+v", v))
}

// appendTime appends t in RFC 3339 with exactly three decimals, the
// monotonic reading dropped.
func appendTime(b []byte, t time.Time) []byte {
	// RFC3339Nano drops trailing zeros: add a tenth of a millisecond to
	// keep four decimals, then drop the fourth.
	const prefix = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Round(0).Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefix], b[n+prefix+1:]...)
}

// appendString appends s, quoted when it needs to be.
func appendString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting reports whether s is empty or has a space, '"', '=', a
// control character or a rune that is not printable (or not UTF-8).
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '"' || c == '=' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
