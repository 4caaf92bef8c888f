package metrics

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// Metric types of the text format.
const (
	gauge   = "gauge"
	counter = "counter"
)

// label is one name="value" pair of a sample.
type label struct{ name, value string }

// exposition collects the families in the order they are written. A
// family's HELP and TYPE lines are written with its first sample, so a
// family without samples leaves no trace. Each family is made once and
// filled in one go (render), which keeps its samples together.
type exposition struct {
	b strings.Builder
}

// family starts the samples of one metric family.
type family struct {
	e               *exposition
	name, typ, help string
	started         bool
}

func (e *exposition) family(name, typ, help string) *family {
	return &family{e: e, name: name, typ: typ, help: help}
}

// add writes one sample of the family.
func (f *family) add(value float64, labels ...label) {
	e := f.e
	if !f.started {
		f.started = true
		e.b.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		e.b.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
	}
	e.b.WriteString(f.name)
	if len(labels) > 0 {
		e.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				e.b.WriteByte(',')
			}
			e.b.WriteString(l.name + `="` + escapeLabel(l.value) + `"`)
		}
		e.b.WriteByte('}')
	}
	e.b.WriteByte(' ')
	e.b.WriteString(formatValue(value))
	e.b.WriteByte('\n')
}

// bool is add with 1 for true, 0 for false.
func (f *family) bool(v bool, labels ...label) {
	n := 0.0
	if v {
		n = 1
	}
	f.add(n, labels...)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

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

// sortedKeys returns the keys of m in order (sort.Strings: the daemon
// binary keeps to sort's non-generic functions).
func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
