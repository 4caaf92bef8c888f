package metrics

import (
	"math"
	"strconv"
	"strings"
)

// label is one name="value" pair of a sample.
type label struct{ name, value string }

// exposition collects the families in the order they are written. A
// family's HELP and TYPE lines are written with its first sample, so a
// family without samples leaves no trace. Each family is filled in one go
// (render), which keeps its samples together.
type exposition struct {
	b strings.Builder
}

// familyWriter writes the samples of one family.
type familyWriter struct {
	e       *exposition
	f       *family
	started bool
	seen    map[string]bool // the label sets written: a series appears once
}

func (e *exposition) family(f *family) *familyWriter {
	return &familyWriter{e: e, f: f}
}

// add writes one sample of the family.
func (w *familyWriter) add(value float64, labels []label) {
	var series strings.Builder
	series.WriteString(w.f.name)
	if len(labels) > 0 {
		series.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				series.WriteByte(',')
			}
			series.WriteString(l.name + `="` + escapeLabel(l.value) + `"`)
		}
		series.WriteByte('}')
	}
	// Two elements with the same name (not something carpd sends) would
	// make the whole scrape invalid: the first one stands.
	if w.seen[series.String()] {
		return
	}
	b := &w.e.b
	if !w.started {
		w.started = true
		w.seen = map[string]bool{}
		b.WriteString("# HELP " + w.f.name + " " + escapeHelp(w.f.help) + "\n")
		b.WriteString("# TYPE " + w.f.name + " " + w.f.typ + "\n")
	}
	w.seen[series.String()] = true
	b.WriteString(series.String())
	b.WriteByte(' ')
	b.WriteString(formatValue(value))
	b.WriteByte('\n')
}

// escapeLabel escapes a label value as the format wants: \ " and newline
// as \\ \" \n. (By hand: strings.Replacer costs the daemon binary 10 KB.)
func escapeLabel(s string) string { return escape(s, true) }

// escapeHelp escapes HELP text: \ and newline.
func escapeHelp(s string) string { return escape(s, false) }

func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// formatValue writes integers as integers (counters of bytes stay
// readable: 48337152, not 4.8337152e+07) and anything else in Go's
// shortest form that reads back as the same float64, which the format
// accepts ("NaN", "+Inf" included).
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 1e-6 && math.Abs(v) < 1e15:
		// Timestamps and round-trip times without an exponent:
		// 1777622400.123, 0.000412.
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
