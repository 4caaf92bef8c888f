package track

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// maxFileValue caps a file tracker's value: a vhid's demotion is one byte.
const maxFileValue = 255

// fileProber reads an integer from a file each round: keepalived's
// track_file. The integer is the demotion. As in keepalived, a file that
// is missing, empty or not a number counts as 0 (good): the file is the
// admin's (or a program's) switch, and no file means nobody asked for a
// demotion. A negative number is 0 too (demotion cannot be negative),
// a number above 255 is 255. The reason says which case it was.
type fileProber struct{ t *Tracker }

func (f *fileProber) round(ctx context.Context) result {
	v, reason := readFileValue(f.t.cfg.Path)
	return result{value: v, reason: reason}
}

func (f *fileProber) wake() <-chan struct{} { return nil }
func (f *fileProber) close()                {}

// readFileValue reads path's integer (docs/trackers.md#file).
func readFileValue(path string) (int, string) {
	fh, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, fmt.Sprintf("%s does not exist (counts as 0)", path)
		}
		return 0, fmt.Sprintf("%s: %v (counts as 0)", path, err)
	}
	defer fh.Close()
	buf := make([]byte, 64)
	n, err := fh.Read(buf)
	if n == 0 {
		if err != nil && err.Error() != "EOF" {
			return 0, fmt.Sprintf("%s: %v (counts as 0)", path, err)
		}
		return 0, fmt.Sprintf("%s is empty (counts as 0)", path)
	}
	s := strings.TrimSpace(string(buf[:n]))
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		s = s[:i] // the first word, like keepalived's strtol
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			if strings.HasPrefix(s, "-") {
				return 0, fmt.Sprintf("%s holds %s, below 0 (counts as 0)", path, s)
			}
			return maxFileValue, fmt.Sprintf("%s holds %s, capped at %d", path, s, maxFileValue)
		}
		return 0, fmt.Sprintf("%s holds %q, not an integer (counts as 0)", path, truncate(s, 20))
	}
	switch {
	case v < 0:
		return 0, fmt.Sprintf("%s holds %d, below 0 (counts as 0)", path, v)
	case v > maxFileValue:
		return maxFileValue, fmt.Sprintf("%s holds %d, capped at %d", path, v, maxFileValue)
	}
	return int(v), fmt.Sprintf("%s holds %d", path, v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
