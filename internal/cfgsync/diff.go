package cfgsync

import (
	"bytes"
	"strconv"
)

// diffContext is the unchanged lines shown around the change.
const diffContext = 2

// Diff returns a unified-style line diff from a (labelled from) to b
// (labelled to): "--- from", "+++ to", one hunk "@@ -line +line @@" with
// the lines between the common head and the common tail as removed
// ("-") and added ("+"), and diffContext unchanged lines (" ") around
// them. Small on purpose: one hunk from the first change to the last.
// Equal inputs give "".
func Diff(from, to string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	x, y := lines(a), lines(b)
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	start := max(head-diffContext, 0)
	out := "--- " + from + "\n+++ " + to + "\n@@ -" + strconv.Itoa(start+1) + " +" + strconv.Itoa(start+1) + " @@\n"
	for _, l := range x[start:head] {
		out += " " + l + "\n"
	}
	for _, l := range x[head : len(x)-tail] {
		out += "-" + l + "\n"
	}
	for _, l := range y[head : len(y)-tail] {
		out += "+" + l + "\n"
	}
	for _, l := range x[len(x)-tail : min(len(x)-tail+diffContext, len(x))] {
		out += " " + l + "\n"
	}
	return out
}

// lines splits b at newlines (a last line without one is a line).
func lines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
			b = append(b[:len(b):len(b)], '\n')
		}
		out = append(out, string(b[:i]))
		b = b[i+1:]
	}
	return out
}
