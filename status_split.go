package main

import (
	"fmt"
	"io"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

// printSplitAndWait prints the split-brain alarms and the last
// maintenance wait of `carpd status`.
func printSplitAndWait(w io.Writer, st *daemon.Status) {
	for _, s := range st.SplitBrain {
		fmt.Fprintf(w, "  SPLIT BRAIN: %s vhid %d is MASTER here and on the sync peer since %s (their adverts do not reach each other)\n",
			s.Interface, s.VHID, s.Since.Local().Format(time.TimeOnly))
	}
	if mw := st.MaintenanceWait; mw != nil {
		line := fmt.Sprintf("  maintenance handover %s (since %s)", mw.State, mw.Since.Local().Format(time.TimeOnly))
		if mw.Reason != "" {
			line += ": " + mw.Reason
		}
		fmt.Fprintln(w, line)
	}
}
