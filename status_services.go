package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/carpd/carpd/internal/daemon"
)

// printServices prints the service roles of `carpd status`: one line per
// service with its role and last action.
func printServices(w io.Writer, ss []daemon.ServiceStatus) {
	if len(ss) > 0 {
		fmt.Fprintln(w, "\nservices:")
	}
	for _, s := range ss {
		last := ""
		if s.Action != "" {
			last = "; last " + s.Action + " " + s.Result + " at " + s.Time.Local().Format(time.TimeOnly)
			if s.Error != "" {
				last += ": " + s.Error
			}
		}
		fmt.Fprintf(w, "  %s (%s, %s, vhids %s): %s%s\n", s.Name, s.Service, s.Backend, strings.Join(s.VHIDs, " "), strings.ToUpper(s.Role), last)
	}
}
