package vip

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// Link flags of a healthy Ethernet port, and of one whose carrier is gone
// (what our veth end shows when its peer is set down).
const (
	flagsUp        = unix.IFF_UP | unix.IFF_BROADCAST | unix.IFF_RUNNING | unix.IFF_MULTICAST | unix.IFF_LOWER_UP
	flagsNoCarrier = unix.IFF_UP | unix.IFF_BROADCAST | unix.IFF_MULTICAST
)

// linkMsg builds a link message the way the kernel sends it: marshalled by
// the rtnetlink library and decoded by ours, so the test sees what the
// watcher would see.
func linkMsg(t *testing.T, index uint32, name string, flags uint32, oper rtnetlink.OperationalState) ifInfoMsg {
	t.Helper()
	b, err := (&rtnetlink.LinkMessage{
		Family:     unix.AF_UNSPEC,
		Index:      index,
		Flags:      flags,
		Attributes: &rtnetlink.LinkAttributes{Name: name, OperationalState: oper},
	}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m ifInfoMsg
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLinkUpRule(t *testing.T) {
	tests := []struct {
		name  string
		flags uint32
		oper  rtnetlink.OperationalState
		want  bool
	}{
		{"ethernet up", flagsUp, rtnetlink.OperStateUp, true},
		{"no carrier", flagsNoCarrier, rtnetlink.OperStateLowerLayerDown, false},
		{"admin down", 0, rtnetlink.OperStateDown, false},
		{"dormant", unix.IFF_UP | unix.IFF_LOWER_UP, rtnetlink.OperStateDormant, false},
		{"dummy: unknown with carrier", unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP, rtnetlink.OperStateUnknown, true},
		{"unknown without carrier", unix.IFF_UP | unix.IFF_RUNNING, rtnetlink.OperStateUnknown, false},
		{"oper up but not running", unix.IFF_UP | unix.IFF_LOWER_UP, rtnetlink.OperStateUp, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := linkMsg(t, 2, "eth0", tt.flags, tt.oper)
			if got := linkUp(&m); got != tt.want {
				t.Errorf("linkUp = %v, want %v", got, tt.want)
			}
		})
	}
	if !linkUp(&ifInfoMsg{Flags: flagsUp}) {
		t.Error("linkUp without attributes (operstate unknown) but with carrier should be true")
	}
}

func TestLinkTable(t *testing.T) {
	up := func(idx uint32, name string) ifInfoMsg {
		return linkMsg(t, idx, name, flagsUp, rtnetlink.OperStateUp)
	}
	down := func(idx uint32, name string) ifInfoMsg {
		return linkMsg(t, idx, name, flagsNoCarrier, rtnetlink.OperStateLowerLayerDown)
	}
	tab := newLinkTable()
	step := func(name string, got, want []LinkEvent) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	step("snapshot", tab.resync([]ifInfoMsg{up(1, "lo"), up(2, "eth0"), down(3, "eth1")}),
		[]LinkEvent{{"lo", 1, true}, {"eth0", 2, true}, {"eth1", 3, false}})
	m := up(2, "eth0")
	step("duplicate (e.g. statistics) is filtered", tab.update(&m), nil)
	m = down(2, "eth0")
	step("carrier lost", tab.update(&m), []LinkEvent{{"eth0", 2, false}})
	m = up(2, "eth0")
	step("carrier back", tab.update(&m), []LinkEvent{{"eth0", 2, true}})
	m = up(3, "wan")
	step("rename", tab.update(&m), []LinkEvent{{"eth1", 3, false}, {"wan", 3, true}})
	step("delete", tab.remove(2), []LinkEvent{{"eth0", 2, false}})
	step("delete unknown", tab.remove(42), nil)
	m = up(4, "eth0")
	step("re-created with a new index", tab.update(&m), []LinkEvent{{"eth0", 4, true}})

	// Resync: eth0 went down unnoticed and wan vanished.
	step("resync", tab.resync([]ifInfoMsg{up(1, "lo"), down(4, "eth0")}),
		[]LinkEvent{{"eth0", 4, false}, {"wan", 3, false}})

	// Dropped events are resent with the current state, once.
	tab.markDropped(LinkEvent{"lo", 1, true})
	tab.markDropped(LinkEvent{"gone0", 9, true})
	step("resync after drops", tab.resync([]ifInfoMsg{up(1, "lo"), down(4, "eth0")}),
		[]LinkEvent{{"gone0", 9, false}, {"lo", 1, true}})
	step("quiet resync", tab.resync([]ifInfoMsg{up(1, "lo"), down(4, "eth0")}), nil)

	// A dropped name that also changed is reported once.
	tab.markDropped(LinkEvent{"eth0", 4, false})
	step("changed and dropped", tab.resync([]ifInfoMsg{up(1, "lo"), up(4, "eth0")}),
		[]LinkEvent{{"eth0", 4, true}})
}

// TestLinkWatcherBackpressure fills the channel and checks that the oldest
// events give way and come back, as current state, at the next poll.
func TestLinkWatcherBackpressure(t *testing.T) {
	w := &Watcher{events: make(chan LinkEvent, 2), table: newLinkTable(), log: discardIfNil(nil)}
	var links []ifInfoMsg
	for i, name := range []string{"a", "b", "c", "d"} {
		links = append(links, linkMsg(t, uint32(i+1), name, flagsUp, rtnetlink.OperStateUp))
	}
	w.emit(w.table.resync(links)...)
	if w.dropped != 2 {
		t.Errorf("dropped = %d, want 2", w.dropped)
	}
	got := []LinkEvent{<-w.events, <-w.events}
	if diff := cmp.Diff([]LinkEvent{{"c", 3, true}, {"d", 4, true}}, got); diff != "" {
		t.Errorf("kept the newest (-want +got):\n%s", diff)
	}
	// Meanwhile b went down.
	links[1] = linkMsg(t, 2, "b", flagsNoCarrier, rtnetlink.OperStateLowerLayerDown)
	w.emit(w.table.resync(links)...)
	got = []LinkEvent{<-w.events, <-w.events}
	if diff := cmp.Diff([]LinkEvent{{"b", 2, false}, {"a", 1, true}}, got); diff != "" {
		t.Errorf("resent after the drop (-want +got):\n%s", diff)
	}
	select {
	case ev := <-w.events:
		t.Errorf("unexpected %v", ev)
	default:
	}
}

// TestWatchLinksLifecycle runs the watcher against the kernel of the test's
// own namespace, read-only (no privilege needed): the snapshot contains the
// loopback interface, Close stops the goroutine, and Events is closed.
func TestWatchLinksLifecycle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := watch(ctx, nil, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	sawLo := false
	timeout := time.After(5 * time.Second)
	for !sawLo {
		select {
		case ev := <-w.Events():
			sawLo = ev.Name == "lo"
		case <-timeout:
			t.Fatal("no event for lo")
		}
	}
	time.Sleep(200 * time.Millisecond) // a few polls
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for range w.Events() { // drains, then sees the channel closed
	}
	checkNoWatcherGoroutine(t)

	// Cancelling the context stops it too.
	w, err = watch(ctx, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.Events():
		case <-deadline:
			t.Fatal("Events not closed after cancel")
		}
	}
	w.Close()
	checkNoWatcherGoroutine(t)
}

// checkNoWatcherGoroutine fails if a Watcher goroutine is still running.
// A goroutine that has called wg.Done may still be returning, so it looks a
// few times (bounded) before failing, like wireguard-go's goroutineLeakCheck.
func checkNoWatcherGoroutine(t *testing.T) {
	t.Helper()
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "(*Watcher).run") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("Watcher goroutine leaked:\n%s", stacks)
}
