package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/ctsync/flow"
	"github.com/carpd/carpd/internal/nl"
	"golang.org/x/sys/unix"
)

// Golden event messages: raw ctnetlink events captured from a real kernel
// (TestCaptureGolden, run with CARPD_UPDATE_GOLDEN=1 as root), each with
// the flow they must parse to.
const goldenDir = "testdata/events"

// formatEvent renders what the tests compare of an event.
func formatEvent(typ flow.EventType, f flow.Flow) string {
	return fmt.Sprintf("%v\norig %v\nreply %v\nzone %d mark %d status %#x timeout %d\ntcp state %d wscale %d/%d flags %#x/%#x\n",
		typ, f.Orig, f.Reply, f.Zone, f.Mark, f.Status, f.Timeout,
		f.TCPState, f.TCPWScaleOrig, f.TCPWScaleReply, f.TCPFlagsOrig, f.TCPFlagsReply)
}

// TestGoldenEvents parses every captured kernel event.
func TestGoldenEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.nlmsg"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden events in %s", goldenDir)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(file, ".nlmsg") + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := parseDatagram(b)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: %d messages, %v", file, len(msgs), err)
		}
		typ, f, _, err := parseMessage(msgs[0])
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := formatEvent(typ, f); got != string(want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", file, got, want)
		}
		ev := flow.Event{Type: typ, Flow: f}
		if !(&Filter{}).matchEvent(&ev) {
			t.Errorf("%s: the default filter drops it", file)
		}
	}
}

// TestCaptureGolden records the events of real masqueraded traffic (ping
// and HTTP through a router) into testdata/events.
func TestCaptureGolden(t *testing.T) {
	if os.Getenv("CARPD_UPDATE_GOLDEN") != "1" {
		t.Skip("set CARPD_UPDATE_GOLDEN=1 to capture golden events")
	}
	n := newNATLab(t)
	ns := nsFD(t, n.r)
	raw, err := nl.Dial(unix.NETLINK_NETFILTER, &nl.Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, g := range []uint32{nfnlgrpConntrackNew, nfnlgrpConntrackUpdate, nfnlgrpConntrackDestroy} {
		if err := raw.JoinGroup(g); err != nil {
			t.Fatal(err)
		}
	}
	n.traffic(t)
	// A DESTROY of a real NATed entry.
	c := openCT(t, ns, Config{})
	fs, err := c.Dump(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Orig.Proto == flow.ProtoTCP {
			if err := c.Delete(testCtx(t), []flow.Key{f.Key()}); err != nil {
				t.Fatal(err)
			}
		}
	}

	raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, eventMessageBuffer)
	want := map[string]bool{"icmp-new": true, "tcp-new": true, "tcp-update-established": true, "tcp-destroy": true}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for len(want) > 0 {
		b, err := raw.ReadDatagram(buf)
		if err != nil {
			t.Fatalf("still missing %v: %v", want, err)
		}
		msgs, err := parseDatagram(b)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%d messages, %v", len(msgs), err)
		}
		typ, f, _, err := parseMessage(msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		name := ""
		switch {
		case f.Orig.Proto == flow.ProtoICMP && typ == flow.EventNew:
			name = "icmp-new"
		case f.Orig.Proto == flow.ProtoTCP && typ == flow.EventNew:
			name = "tcp-new"
		case f.Orig.Proto == flow.ProtoTCP && typ == flow.EventUpdate && f.TCPState == flow.TCPEstablished && f.Status&flow.StatusAssured != 0:
			name = "tcp-update-established"
		case f.Orig.Proto == flow.ProtoTCP && typ == flow.EventDestroy:
			name = "tcp-destroy"
		}
		if !want[name] {
			continue
		}
		delete(want, name)
		base := filepath.Join(goldenDir, name)
		if err := os.WriteFile(base+".nlmsg", b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".txt", []byte(formatEvent(typ, f)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", name, formatEvent(typ, f))
	}
}
