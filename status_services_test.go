package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/daemon"
	"github.com/carpd/carpd/ubus/json"
)

// TestPrintStatusServices: `carpd status` lists each service role with
// its last action, and the error of a failed one.
func TestPrintStatusServices(t *testing.T) {
	b, err := os.ReadFile("internal/luciview/testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printStatus(&out, &st)
	at := func(s string) string {
		tm, _ := time.Parse(time.RFC3339, s)
		return tm.Local().Format(time.TimeOnly)
	}
	for _, want := range []string{
		"\nservices:\n  dhcp (dnsmasq, rc, vhids lan): MASTER; last start ok at " + at("2026-05-04T09:40:05Z") + "\n",
		"  ra (odhcpd, initd, vhids lan wan): BACKUP; last stop failed at " + at("2026-05-04T09:40:03Z") + ": exit status 1: odhcpd: not running\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, out.String())
		}
	}
}
