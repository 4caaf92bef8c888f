package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// newLab returns a lab closed when the test ends, or skips.
func newLab(t *testing.T) *Lab {
	t.Helper()
	Require(t)
	l, err := New("labt")
	if err != nil {
		t.Fatal(err)
	}
	Cleanup(t, l)
	return l
}

// must fails the test on err; for setup steps.
func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// eventually polls cond every 10 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	for range int(d / (10 * time.Millisecond)) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// gone reports whether pid no longer runs (absent, or a zombie nobody reaps).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// labNamespaces lists the namespaces of l that still exist.
func labNamespaces(t *testing.T, l *Lab) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], l.base+"-") {
			left = append(left, f[0])
		}
	}
	return left
}

func TestNameValidation(t *testing.T) {
	for _, p := range []string{"", "Lab", "lab1", "1lab", "la-b", "abcdefghijklmnopq"} {
		if _, err := New(p); err == nil || !strings.Contains(err.Error(), "bad prefix") {
			t.Errorf("New(%q) = %v, want a bad-prefix error", p, err)
		}
	}
	if _, err := SweepStale("lab1"); err == nil {
		t.Error("SweepStale(lab1): no error")
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	Require(t)
	goroutines := runtime.NumGoroutine()
	l, err := New("labt")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // in case of an early failure
	sw := must[*Switch](t)(l.Switch("sw"))
	h := must[*Host](t)(l.Host("h"))
	must[*Link](t)(l.Attach(h, sw, "eth0", "10.0.0.1/24"))
	if _, err := l.Host("h"); err == nil {
		t.Error("second host h: no error")
	}
	if got := labNamespaces(t, l); len(got) != 2 {
		t.Fatalf("namespaces before Close = %v, want 2", got)
	}

	sleeper := must[*Proc](t)(h.Start("sleep", "100"))
	// A daemon that leaves its process group: the inner sh prints its pid
	// once it leads a session of its own.
	escaper := must[*Proc](t)(h.Start("sh", "-c", `setsid sh -c 'echo $$; exec sleep 100' & wait`))
	var escaped int
	if !eventually(5*time.Second, func() bool {
		escaped, err = strconv.Atoi(strings.TrimSpace(escaper.Output()))
		return err == nil
	}) {
		t.Fatalf("no pid in %q", escaper.Output())
	}
	// A grandchild in the same process group, which sh leaves behind.
	forker := must[*Proc](t)(h.Start("sh", "-c", "sleep 100 & echo $!; wait"))
	var grandchild int
	if !eventually(5*time.Second, func() bool {
		grandchild, err = strconv.Atoi(strings.TrimSpace(forker.Output()))
		return err == nil
	}) {
		t.Fatalf("no grandchild pid in %q", forker.Output())
	}

	// A probe left running.
	must[*Probe](t)(h.StartProbe(netip.MustParseAddr("127.0.0.1"), 0, 0))

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !eventually(2*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }) {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before the lab, %d after Close:\n%s", goroutines, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
	for _, pid := range []int{sleeper.Pid(), forker.Pid(), grandchild, escaped} {
		if !eventually(2*time.Second, func() bool { return gone(pid) }) {
			t.Errorf("pid %d survived Close", pid)
		}
	}
	if err := sleeper.Wait(time.Second); err == nil {
		t.Error("sleeper exited cleanly, want killed")
	}
	if got := labNamespaces(t, l); len(got) != 0 {
		t.Errorf("namespaces after Close = %v", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Host("late"); !errors.Is(err, ErrClosed) {
		t.Errorf("Host after Close: %v, want ErrClosed", err)
	}
	if _, err := h.Start("true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestProcGroupKilledOnExit(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	p := must[*Proc](t)(h.Start("sh", "-c", "sleep 100 & echo $!"))
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(p.Output()))
	if err != nil {
		t.Fatalf("output %q: %v", p.Output(), err)
	}
	if !eventually(2*time.Second, func() bool { return gone(pid) }) {
		t.Errorf("orphan %d outlived its group leader", pid)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit: %v, want os.ErrProcessDone", err)
	}

	// Signal, exit status, timeout.
	q := must[*Proc](t)(h.Start("sh", "-c", "trap 'echo got term; exit 7' TERM; echo ready; while :; do sleep 0.01; done"))
	if !eventually(5*time.Second, func() bool { return strings.Contains(q.Output(), "ready") }) {
		t.Fatalf("not ready: %q", q.Output())
	}
	if err := q.Wait(20 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait on a running process: %v, want ErrTimeout", err)
	}
	if err := q.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := q.Wait(5 * time.Second); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("Wait = %v, want exit status 7", err)
	}
	if !strings.Contains(q.Output(), "got term") {
		t.Errorf("output %q lacks the trap's line", q.Output())
	}
}

func TestStartLogFile(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	log := filepath.Join(t.TempDir(), "p.log")
	p := must[*Proc](t)(h.StartWith(StartOptions{LogFile: log, Env: []string{"LABTEST=42"}},
		"sh", "-c", "echo out $LABTEST; echo err >&2"))
	if err := p.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), p.Output()} {
		if s != "out 42\nerr\n" {
			t.Errorf("output %q, want %q", s, "out 42\nerr\n")
		}
	}
}

func TestRun(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	ctx := context.Background()
	if out, err := h.Run(ctx, "sh", "-c", "echo out; echo err >&2"); err != nil || out != "out\n" {
		t.Errorf("Run = %q, %v; want %q, nil", out, err, "out\n")
	}
	_, err := h.Run(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "out") || !strings.Contains(err.Error(), "err") {
		t.Errorf("failing Run: error %v lacks the combined output", err)
	}
	// Run sees the namespace: only lo, which Host set up.
	out, err := h.Run(ctx, "ip", "-o", "link", "show")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, "lo:") || !strings.Contains(out, "UP") {
		t.Errorf("ip link in a fresh host = %q, %v; want lo only, up", out, err)
	}

	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Run(tctx, "sleep", "10"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run past its deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run past its deadline took %v", d)
	}
	l.mu.Lock()
	n := len(l.procs)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d Run commands still tracked", n)
	}
}

func TestDo(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	var want, root syscall.Stat_t
	if err := syscall.Stat(h.path(), &want); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/proc/self/ns/net", &root); err != nil {
		t.Fatal(err)
	}
	if want.Ino == root.Ino {
		t.Fatal("host namespace is the root namespace")
	}

	var got syscall.Stat_t
	var names []string
	err := h.Do(func() error {
		if err := syscall.Stat("/proc/thread-self/ns/net", &got); err != nil {
			return err
		}
		ifs, err := net.Interfaces()
		for _, ifi := range ifs {
			names = append(names, ifi.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino {
		t.Errorf("inside Do: netns inode %d, want %d", got.Ino, want.Ino)
	}
	if !slices.Equal(names, []string{"lo"}) {
		t.Errorf("interfaces inside Do = %v, want [lo]", names)
	}

	sentinel := errors.New("sentinel")
	if err := h.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do error = %v, want the sentinel", err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want boom", v)
			}
		}()
		h.Do(func() error { panic("boom") })
		t.Error("panic not propagated")
	}()

	// Threads go back to the pool in the root namespace.
	for range 20 {
		h.Do(func() error { return nil })
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong int
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var st syscall.Stat_t
			if syscall.Stat("/proc/thread-self/ns/net", &st) != nil || st.Ino != root.Ino {
				mu.Lock()
				wrong++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wrong > 0 {
		t.Errorf("%d threads left outside the root namespace", wrong)
	}
}

func TestSysctl(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	read := func(key string) string {
		t.Helper()
		out, err := h.Run(context.Background(), "cat", sysctlPath(key))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	for _, kv := range hostSysctls {
		if got := read(kv[0]); got != kv[1] {
			t.Errorf("%s = %s, want %s", kv[0], got, kv[1])
		}
	}
	const key = "net.ipv4.conf.all.arp_ignore"
	before, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		t.Fatal(err)
	}
	newVal := "1"
	if strings.TrimSpace(string(before)) == "1" {
		newVal = "2"
	}
	if err := h.Sysctl(key, newVal); err != nil {
		t.Fatal(err)
	}
	if got := read(key); got != newVal {
		t.Errorf("in the host: %s = %s, want %s", key, got, newVal)
	}
	if after, _ := os.ReadFile(sysctlPath(key)); string(after) != string(before) {
		t.Errorf("the root namespace's %s changed from %q to %q", key, before, after)
	}
	if err := h.Sysctl("kernel.hostname", "x"); err == nil {
		t.Error("Sysctl(kernel.hostname): no error")
	}
	if err := h.Sysctl("net/ipv4/conf/lo/arp_ignore", "1"); err != nil || read("net.ipv4.conf.lo.arp_ignore") != "1" {
		t.Errorf("path-form key: %v", err)
	}
}

func TestLinkCarrier(t *testing.T) {
	l := newLab(t)
	sw := must[*Switch](t)(l.Switch("sw"))
	h := must[*Host](t)(l.Host("h"))
	k := must[*Link](t)(l.Attach(h, sw, "eth0", "10.0.0.1/24", "fd00::1/64"))
	state := func() LinkState {
		t.Helper()
		return must[LinkState](t)(h.LinkState("eth0"))
	}
	waitState := func(what string, ok func(LinkState) bool) {
		t.Helper()
		if !eventually(3*time.Second, func() bool { return ok(state()) }) {
			t.Errorf("%s: state %+v", what, state())
		}
	}
	waitState("after Attach", func(s LinkState) bool { return s.AdminUp && s.Carrier && s.OperState == "UP" })

	if err := k.SetUp(false); err != nil {
		t.Fatal(err)
	}
	waitState("carrier down", func(s LinkState) bool { return s.AdminUp && !s.Carrier && s.OperState != "UP" })
	addrs := must[[]string](t)(h.Addrs("eth0"))
	if !slices.Contains(addrs, "10.0.0.1/24") || !slices.Contains(addrs, "fd00::1/64") {
		t.Errorf("addresses without carrier = %v, want 10.0.0.1/24 and fd00::1/64 kept", addrs)
	}
	if err := k.SetUp(true); err != nil {
		t.Fatal(err)
	}
	waitState("carrier back", func(s LinkState) bool { return s.AdminUp && s.Carrier && s.OperState == "UP" })

	if err := k.SetHostUp(false); err != nil {
		t.Fatal(err)
	}
	waitState("admin down", func(s LinkState) bool { return !s.AdminUp && !s.Carrier })
	if err := k.SetHostUp(true); err != nil {
		t.Fatal(err)
	}
	waitState("admin up", func(s LinkState) bool { return s.AdminUp && s.Carrier })
	if _, err := l.Attach(h, sw, "an-overlong-name"); err == nil {
		t.Error("Attach with a 16-byte name: no error")
	}
}

func TestProbeIPv6Outage(t *testing.T) {
	l := newLab(t)
	lan := must[*Switch](t)(l.Switch("lan"))
	client := must[*Host](t)(l.Host("client"))
	r1 := must[*Host](t)(l.Host("r1"))
	must[*Link](t)(l.Attach(client, lan, "eth0", "fd00::100/64"))
	link := must[*Link](t)(l.Attach(r1, lan, "eth0", "fd00::2/64"))

	p := must[*Probe](t)(client.StartProbe(netip.MustParseAddr("fd00::2"), 0, 10*time.Second))
	if !eventually(5*time.Second, func() bool { return p.Snapshot().Received >= 10 }) {
		t.Fatalf("no replies: %v", p.Snapshot())
	}
	if err := link.SetUp(false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := link.SetUp(true); err != nil {
		t.Fatal(err)
	}
	n := p.Snapshot().Received
	if !eventually(5*time.Second, func() bool { return p.Snapshot().Received >= n+10 }) {
		t.Fatalf("no replies after the carrier came back: %v", p.Snapshot())
	}
	res := p.Stop()
	t.Logf("probe: %v", res)
	if res.Sent != res.Received+res.Lost || len(res.Outages) == 0 {
		t.Fatalf("result %+v: want an outage", res)
	}
	if d := res.Longest(); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("longest outage %v, want about 300 ms", d)
	}
	if mac, state, err := client.Neigh("eth0", "fd00::2"); err != nil || mac == "" {
		t.Errorf("client neighbour fd00::2 = %q %q %v", mac, state, err)
	}
	if _, _, err := client.Neigh("eth0", "fd00::99"); !errors.Is(err, ErrNoNeighbor) {
		t.Errorf("Neigh(fd00::99) error %v, want ErrNoNeighbor", err)
	}
	if again := p.Stop(); again.Sent != res.Sent {
		t.Errorf("second Stop = %v, want %v", again, res)
	}
}

func TestProbeLimit(t *testing.T) {
	l := newLab(t)
	h := must[*Host](t)(l.Host("h"))
	// Loopback, 5 ms apart, for 100 ms: about 20 requests, then it stops
	// by itself.
	p := must[*Probe](t)(h.StartProbe(netip.MustParseAddr("127.0.0.1"), 5*time.Millisecond, 100*time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	a := p.Snapshot()
	time.Sleep(100 * time.Millisecond)
	b := p.Stop()
	if a.Sent != b.Sent || b.Sent < 5 || b.Sent > 40 || b.Lost != 0 {
		t.Errorf("snapshot %v, final %v: want ~20 requests, all answered, none after the limit", a, b)
	}
}

func TestSweepStale(t *testing.T) {
	Require(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("labsweep%d.1-x", dead.Process.Pid)
	live := fmt.Sprintf("labsweep%d.1-y", os.Getpid())
	other := fmt.Sprintf("labsweepx%d.1-z", dead.Process.Pid)
	for _, ns := range []string{stale, live, other} {
		t.Cleanup(func() { deleteNS(ns) })
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}
	removed, err := SweepStale("labsweep")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{stale}) {
		t.Errorf("SweepStale removed %v, want [%s]", removed, stale)
	}
	for ns, want := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(filepath.Join(nsDir, ns)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", ns, err == nil, want)
		}
	}
}
