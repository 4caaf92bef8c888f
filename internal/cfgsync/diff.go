package cfgsync

import (
	"bytes"
	"strconv"
)

// maxDiffCells bounds the table of the line diff: beyond it the lines
// between the common head and tail are shown as all removed and added.
const maxDiffCells = 4 << 20

// diffContext is the unchanged lines shown around a change.
const diffContext = 2

// Diff returns a unified-style line diff from a (labelled from) to b
// (labelled to): "--- from", "+++ to", then each change as "@@ -line
// +line @@" and its lines with " ", "-" or "+", with diffContext
// unchanged lines around it. Equal inputs give "".
func Diff(from, to string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	x, y := lines(a), lines(b)
	// The common head and tail, then the longest common subsequence of
	// the middle.
	head := 0
	for head < len(x) && head < len(y) && x[head] == y[head] {
		head++
	}
	tail := 0
	for tail < len(x)-head && tail < len(y)-head && x[len(x)-1-tail] == y[len(y)-1-tail] {
		tail++
	}
	mx, my := x[head:len(x)-tail], y[head:len(y)-tail]
	// ops: ' ', '-' or '+' per line of the edit script.
	var ops []byte
	for range head {
		ops = append(ops, ' ')
	}
	if (len(mx)+1)*(len(my)+1) > maxDiffCells {
		ops = append(ops, bytes.Repeat([]byte{'-'}, len(mx))...)
		ops = append(ops, bytes.Repeat([]byte{'+'}, len(my))...)
	} else {
		ops = append(ops, lcsOps(mx, my)...)
	}
	for range tail {
		ops = append(ops, ' ')
	}
	var out bytes.Buffer
	out.WriteString("--- " + from + "\n+++ " + to + "\n")
	// Hunks: runs of changes with their context.
	i, j := 0, 0 // line indexes in x and y at op k
	for k := 0; k < len(ops); {
		if ops[k] == ' ' {
			k, i, j = k+1, i+1, j+1
			continue
		}
		start := max(k-diffContext, 0)
		// The end: diffContext unchanged lines after the last change that
		// is not followed by more than 2*diffContext unchanged lines.
		end, quiet := k, 0
		for e := k; e < len(ops) && quiet <= 2*diffContext; e++ {
			if ops[e] == ' ' {
				quiet++
			} else {
				quiet, end = 0, e+1
			}
		}
		end = min(end+diffContext, len(ops))
		si, sj := i-(k-start), j-(k-start)
		out.WriteString("@@ -" + strconv.Itoa(si+1) + " +" + strconv.Itoa(sj+1) + " @@\n")
		ci, cj := si, sj
		for e := start; e < end; e++ {
			switch ops[e] {
			case ' ':
				out.WriteString(" " + x[ci] + "\n")
				ci, cj = ci+1, cj+1
			case '-':
				out.WriteString("-" + x[ci] + "\n")
				ci++
			case '+':
				out.WriteString("+" + y[cj] + "\n")
				cj++
			}
		}
		k, i, j = end, ci, cj
	}
	return out.String()
}

// lines splits b at newlines (a last line without one is a line).
func lines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		l, rest, _ := bytes.Cut(b, []byte{'\n'})
		out = append(out, string(l))
		b = rest
	}
	return out
}

// lcsOps is the edit script from x to y along a longest common
// subsequence: removals before additions at each change.
func lcsOps(x, y []string) []byte {
	n, m := len(x), len(y)
	// t[i][j]: the LCS length of x[i:] and y[j:].
	t := make([]int32, (n+1)*(m+1))
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				t[i*(m+1)+j] = t[(i+1)*(m+1)+j+1] + 1
			} else {
				t[i*(m+1)+j] = max(t[(i+1)*(m+1)+j], t[i*(m+1)+j+1])
			}
		}
	}
	var ops []byte
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, ' ')
			i, j = i+1, j+1
		case j == m || (i < n && t[(i+1)*(m+1)+j] >= t[i*(m+1)+j+1]):
			ops = append(ops, '-')
			i++
		default:
			ops = append(ops, '+')
			j++
		}
	}
	return ops
}
