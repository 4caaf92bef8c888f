package openwrt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script that appends its environment's
// carpd variables to a log file.
func script(t *testing.T, body string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	path = filepath.Join(dir, "hotplug-call")
	s := "#!/bin/sh\n" + strings.ReplaceAll(body, "LOG", log) + "\n"
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func TestHotplugOrderAndEnv(t *testing.T) {
	path, log := script(t, `echo "$1 $HOTPLUG_TYPE $ACTION $VHID $INTERFACE $VIPS" >> LOG`)
	h := NewHotplug(path, 5*time.Second, nil)
	for _, a := range []string{"BACKUP", "MASTER", "BACKUP", "INIT"} {
		h.Event("ACTION="+a, "VHID=3", "INTERFACE=br-lan", "VIPS=192.168.1.1/24 fd00::1/64")
	}
	h.Close()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "carp carp BACKUP 3 br-lan 192.168.1.1/24 fd00::1/64\n" +
		"carp carp MASTER 3 br-lan 192.168.1.1/24 fd00::1/64\n" +
		"carp carp BACKUP 3 br-lan 192.168.1.1/24 fd00::1/64\n" +
		"carp carp INIT 3 br-lan 192.168.1.1/24 fd00::1/64\n"
	if string(b) != want {
		t.Fatalf("got:\n%swant:\n%s", b, want)
	}
}

// TestHotplugNeverBlocks: a hung script is killed at the timeout, Event
// returns at once meanwhile, and the queue stays bounded.
func TestHotplugNeverBlocks(t *testing.T) {
	path, log := script(t, `echo "$ACTION" >> LOG; [ "$ACTION" = hang ] && exec sleep 30; true`)
	h := NewHotplug(path, 300*time.Millisecond, nil)
	h.Event("ACTION=hang")
	for i := 0; i < 200; i++ { // wait until the hung script runs
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "hang") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	for i := 0; i < hotplugQueueLen+10; i++ {
		h.Event("ACTION=x")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Event blocked for %v", d)
	}
	h.Event("ACTION=last")
	h.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %v", d)
	}
	b, _ := os.ReadFile(log)
	lines := strings.Fields(string(b))
	if lines[0] != "hang" || lines[len(lines)-1] != "last" {
		t.Fatalf("order: %v", lines)
	}
	if h.q.Dropped() == 0 || len(lines) > hotplugQueueLen+1 {
		t.Fatalf("queue not bounded: %d run, %d dropped", len(lines), h.q.Dropped())
	}
}

func TestHotplugMissingProgram(t *testing.T) {
	h := NewHotplug(filepath.Join(t.TempDir(), "none"), time.Second, nil)
	h.Event("ACTION=MASTER")
	h.Close()
	h.Close() // idempotent
}

// alive reports whether pid is a live process (a zombie is dead).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestHotplugTimeoutKillsGroup: a hook that hangs after starting a child of
// its own is stopped with its child at the timeout, before the next event
// runs, and the next event sees neither alive.
func TestHotplugTimeoutKillsGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The hang event starts a background sleeper (trapping TERM, so only
	// SIGKILL of the group ends it), records both PIDs, and waits. The
	// next event reports which recorded PIDs still live when it starts.
	path, log := script(t, `
if [ "$ACTION" = hang ]; then
	sh -c 'trap "" TERM; sleep 300' &
	echo "$$ $!" > `+pids+`
	echo hang >> LOG
	sleep 300
	echo "hang survived" >> LOG
else
	for p in $(cat `+pids+`); do
		if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo "alive $p" >> LOG; fi
	done
	echo "$ACTION" >> LOG
fi`)
	t.Cleanup(func() { // on failure, leave nothing behind
		raw, _ := os.ReadFile(pids)
		for _, s := range strings.Fields(string(raw)) {
			var pid int
			if fmt.Sscan(s, &pid); pid > 0 && alive(pid) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	h := NewHotplug(path, 300*time.Millisecond, nil)
	h.Event("ACTION=hang")
	h.Event("ACTION=next")
	h.Close()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "hang\nnext\n" {
		t.Fatalf("hook log:\n%s", b)
	}
	raw, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		t.Fatalf("pids file %q", raw)
	}
	for _, s := range f {
		var pid int
		fmt.Sscan(s, &pid)
		if pid <= 0 || alive(pid) {
			t.Errorf("process %s of the timed-out hook is alive", s)
		}
	}
}

// TestHotplugConfigure: after Configure, the calls that start run the new
// program, in order and one at a time; the one running finishes.
func TestHotplugConfigure(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	prog := func(name string) string {
		p := filepath.Join(dir, name)
		body := "#!/bin/sh\necho \"" + name + " $ACTION start\" >> " + log + "\nsleep 0.05\necho \"" + name + " $ACTION end\" >> " + log + "\n"
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := prog("a"), prog("b")
	h := NewHotplug(a, 5*time.Second, nil)
	h.Event("ACTION=1")
	for i := 0; i < 200; i++ { // until 1 runs
		if b, _ := os.ReadFile(log); len(b) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.Event("ACTION=2")
	h.Configure(b, 5*time.Second)
	h.Event("ACTION=3")
	h.Close()
	got, _ := os.ReadFile(log)
	want := "a 1 start\na 1 end\nb 2 start\nb 2 end\nb 3 start\nb 3 end\n"
	if string(got) != want {
		t.Fatalf("got:\n%swant:\n%s", got, want)
	}
}
