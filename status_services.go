package main

import (
	"io"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

// printServices prints the service roles of `carpd status`: one line per
// service with its role and last action.
func printServices(w io.Writer, ss []daemon.ServiceStatus) {
	if len(ss) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\nservices:\n")
	for _, s := range ss {
		b.WriteString("  " + s.Name + " (" + s.Service + ", " + s.Backend + ", vhids " + strings.Join(s.VHIDs, " ") + "): " + strings.ToUpper(s.Role))
		if s.Action != "" {
			b.WriteString("; last " + s.Action + " " + s.Result + " at " + s.Time.Local().Format(time.TimeOnly))
		}
		if s.Error != "" {
			b.WriteString(": " + s.Error)
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(w, b.String())
}
