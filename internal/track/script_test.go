package track

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpd/carpd/internal/config"
)

// TestScriptTracker runs real shell scripts: exit 0 is good, exit 1 bad
// with its last output line in the reason, a hung script is killed at the
// timeout (with what it started) and counts bad.
func TestScriptTracker(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "mode")
	pidfile := filepath.Join(dir, "pid")
	os.WriteFile(flag, []byte("ok"), 0o644)
	script := `case $(cat ` + flag + `) in
ok) exit 0;;
fail) echo "gateway unreachable"; exit 1;;
hang) sleep 30 & echo $! > ` + pidfile + `; wait;;
esac`
	reports := make(chan Report, 4)
	tr := Start(context.Background(), config.Track{Name: "s", Type: config.TrackScript, Command: []string{"sh", "-c", script},
		Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Down: 2, Up: 2},
		Env{}, func(r Report) { reports <- r })
	defer tr.Stop()
	waitState(t, tr, StateUp, 0)

	os.WriteFile(flag, []byte("fail"), 0o644)
	r := waitReport(t, reports)
	if !r.Down || r.Reason != "sh: exit status 1: gateway unreachable for 2 rounds" {
		t.Fatalf("report %+v", r)
	}
	os.WriteFile(flag, []byte("ok"), 0o644)
	if r := waitReport(t, reports); r.Down {
		t.Fatalf("report %+v", r)
	}

	os.WriteFile(flag, []byte("hang"), 0o644)
	start := time.Now()
	r = waitReport(t, reports)
	took := time.Since(start)
	if !r.Down || !strings.Contains(r.Reason, "sh: timed out after 300ms") {
		t.Fatalf("report %+v", r)
	}
	// Two rounds of 300 ms and the kill (SIGTERM to the group: sh and
	// sleep die at once), well under the script's 30 s.
	if took > 5*time.Second {
		t.Fatalf("hung script: down after %v", took)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			break // the hung script's child was killed with it
		}
		if st, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung script's sleep (pid %s) still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestScriptTrackerMissing: a program that does not exist is a bad round
// with the reason, not a crash.
func TestScriptTrackerMissing(t *testing.T) {
	reports := make(chan Report, 1)
	tr := Start(context.Background(), config.Track{Name: "m", Type: config.TrackScript, Command: []string{"/nonexistent/check"},
		Interval: 50 * time.Millisecond, Down: 1}, Env{}, func(r Report) { reports <- r })
	defer tr.Stop()
	if r := waitReport(t, reports); !r.Down || !strings.Contains(r.Reason, "/nonexistent/check") {
		t.Fatalf("report %+v", r)
	}
}

// TestProcessTracker looks for a real process by name (a sleep with a
// name of its own, through a symlink, so argv0's base name is unique).
func TestProcessTracker(t *testing.T) {
	dir := t.TempDir()
	name := fmt.Sprintf("carpdtrk%d", os.Getpid()) // unique among parallel runs
	link := filepath.Join(dir, name)
	sleep := "/bin/sleep"
	if _, err := os.Stat(sleep); err != nil {
		sleep = "/usr/bin/sleep"
	}
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	reports := make(chan Report, 4)
	tr := Start(context.Background(), config.Track{Name: "p", Type: config.TrackProcess, Process: name,
		Interval: 50 * time.Millisecond, Down: 2, Up: 2}, Env{}, func(r Report) { reports <- r })
	defer tr.Stop()
	// Not running: down after 2 rounds.
	if r := waitReport(t, reports); !r.Down || r.Reason != "no process "+name+" for 2 rounds" {
		t.Fatalf("report %+v", r)
	}
	p, err := os.StartProcess(link, []string{link, "30"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); p.Wait() }()
	if r := waitReport(t, reports); r.Down || r.Reason != "1 process(es) "+name+" running for 2 rounds" {
		t.Fatalf("report %+v", r)
	}
	p.Kill()
	p.Wait()
	if r := waitReport(t, reports); !r.Down {
		t.Fatalf("report %+v", r)
	}
}

// TestCountProcessesProcRoot: comm and argv0 matching on a made-up proc
// tree (Env.ProcRoot), including a name longer than comm's 15 bytes.
func TestCountProcessesProcRoot(t *testing.T) {
	root := t.TempDir()
	mk := func(pid, comm, cmdline string) {
		d := filepath.Join(root, pid)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "comm"), []byte(comm+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644)
	}
	mk("1", "procd", "/sbin/procd\x00")
	mk("20", "openvpn", "/usr/sbin/openvpn\x00--config\x00x\x00")
	mk("21", "kworker/0:1", "")                                        // kernel thread
	mk("22", "sh", "/usr/sbin/openvpn-helper\x00")                     // argv0 differs
	mk("23", "averyveryverylo", "/usr/bin/averyveryverylongname\x00")  // comm truncated
	mk("24", "averyveryverylo", "/usr/bin/averyveryverylongnameX\x00") // another long one
	mk("25", "python3", "/usr/sbin/mwan3track\x00")                    // a script: argv0
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	for name, want := range map[string]int{"procd": 1, "openvpn": 1, "openvpn-helper": 1,
		"averyveryverylongname": 1, "mwan3track": 1, "python3": 1, "kworker/0:1": 1, "dnsmasq": 0} {
		if n, err := countProcesses(root, name); err != nil || n != want {
			t.Errorf("%s: %d %v, want %d", name, n, err, want)
		}
	}
}
