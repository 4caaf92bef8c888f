package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// nsDir is where `ip netns` binds namespaces by name.
	nsDir = "/run/netns"
	// cmdTimeout bounds every command whose context has no deadline.
	cmdTimeout = 10 * time.Second
	// killWait bounds how long Close waits for a SIGKILLed process.
	killWait = 5 * time.Second
	// failLogTail is how much of each process's output Cleanup logs when
	// the test has failed.
	failLogTail = 8 << 10
	// requireEnv makes Require fail instead of skip.
	requireEnv = "CARPD_REQUIRE_NETNS"
	// qemuEnv marks a test binary run under qemu-user (make qemu-test):
	// qemu translates only part of netlink between the guest's byte
	// order and the host's, so the kernel glue is tested natively only.
	qemuEnv = "CARPD_QEMU_USER"
)

var (
	// A prefix ends in a letter so that the pid after it parses back
	// unambiguously: prefix "lab" must never match "lab1" + pid.
	prefixRE = regexp.MustCompile(`^[a-z]([a-z0-9]{0,14}[a-z])?$`)
	// Host and switch names.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,15}$`)
	// Interface names: IFNAMSIZ-1 bytes, nothing `ip` would misparse.
	ifnameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$`)
	// staleRE matches what follows the prefix in a namespace name.
	staleRE = regexp.MustCompile(`^([0-9]+)\.[0-9]+-.+$`)
)

// labSeq numbers the labs of this process.
var labSeq atomic.Uint64

// A Lab owns a set of network namespaces (hosts and switches), the veth pairs
// between them, the processes started in them and the probes sending from
// them. Close tears all of it down. A Lab is safe for concurrent use.
type Lab struct {
	base string // "<prefix><pid>.<seq>"; each namespace is base+"-"+name

	// ops counts the creating methods in flight; Close waits for them so
	// that nothing is created behind its back.
	ops sync.WaitGroup

	mu         sync.Mutex // guards the fields below
	closed     bool
	namespaces []string        // created, in creation order
	names      map[string]bool // host and switch names in use
	procs      []*Proc
	probes     []*Probe
	links      int // veths created, numbers the bridge-side ends

	closeOnce sync.Once
	closeErr  error
}

// New returns an empty lab whose namespaces are named
// `<prefix><pid>.<seq>-<name>`. prefix is 1 to 16 lower-case letters and
// digits, starting and ending with a letter (say "carpe" for the end-to-end
// tests, "demo", "bench"). New first calls SweepStale(prefix).
func New(prefix string) (*Lab, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab: bad prefix %q: want 1-16 of [a-z0-9], starting and ending with a letter", prefix)
	}
	if err := Available(); err != nil {
		return nil, err
	}
	if _, err := SweepStale(prefix); err != nil {
		return nil, err
	}
	return &Lab{
		base:  fmt.Sprintf("%s%d.%d", prefix, os.Getpid(), labSeq.Add(1)),
		names: make(map[string]bool),
	}, nil
}

// TB is the part of testing.TB that Cleanup and Require use. It is declared
// here so that the lab package, which bench and internal/lab/demo use outside tests,
// does not import testing; a *testing.T or *testing.B satisfies it.
type TB interface {
	Helper()
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Cleanup registers l.Close with t.Cleanup and reports its error. If the
// test has failed by then, it first logs the tail of every process's output.
func Cleanup(t TB, l *Lab) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			procs := append([]*Proc(nil), l.procs...)
			l.mu.Unlock()
			for _, p := range procs {
				out := p.Output()
				if len(out) > failLogTail {
					out = "…" + out[len(out)-failLogTail:]
				}
				t.Logf("lab: output of %s (pid %d):\n%s", p, p.Pid(), out)
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab: close: %v", err)
		}
	})
}

// Close stops every probe, SIGKILLs every process started in the lab (and
// its process group) and waits for it, SIGKILLs any other process still in
// a lab namespace (a daemon that left its process group), then deletes
// every namespace the lab created, and with them their interfaces. It is idempotent: later calls
// wait for the first and return its error.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.ops.Wait()

		// Nothing can be added any more; read without racing.
		l.mu.Lock()
		probes, procs, namespaces := l.probes, l.procs, l.namespaces
		l.mu.Unlock()

		var errs []error
		for _, p := range probes {
			p.Stop()
		}
		for _, p := range procs {
			p.Kill()
		}
		// Daemons that left their process group, and would keep the
		// output pipes of their parent open.
		for _, ns := range namespaces {
			killNSProcs(ns)
		}
		for _, p := range procs {
			if err := p.Wait(killWait); errors.Is(err, ErrTimeout) {
				errs = append(errs, fmt.Errorf("lab: %s (pid %d) survived SIGKILL for %v", p, p.Pid(), killWait))
			}
		}
		for i := len(namespaces) - 1; i >= 0; i-- {
			if err := deleteNS(namespaces[i]); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// begin registers a creating operation; it fails once Close has begun.
func (l *Lab) begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.ops.Add(1)
	return nil
}

// newNS creates the namespace for a host or switch called name. The caller
// holds an operation (begin).
func (l *Lab) newNS(name string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("lab: bad name %q: want 1-16 of [A-Za-z0-9_-]", name)
	}
	ns := l.base + "-" + name
	l.mu.Lock()
	if l.names[name] {
		l.mu.Unlock()
		return "", fmt.Errorf("lab: name %q already used in this lab", name)
	}
	l.names[name] = true
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		l.mu.Lock()
		delete(l.names, name)
		l.mu.Unlock()
		return "", err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	return ns, nil
}

// deleteNS deletes a namespace by name; a namespace already gone is not an
// error.
func deleteNS(ns string) error {
	if _, err := os.Lstat(filepath.Join(nsDir, ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := run(ctx, "ip", "netns", "delete", ns)
	return err
}

// ipIn runs `ip -n ns args...`: every interface, address and route command
// of this package goes through here, so none can touch the caller's
// namespace.
func ipIn(ctx context.Context, ns string, args ...string) (string, error) {
	if ns == "" {
		return "", errors.New("lab: ip command without a namespace")
	}
	return run(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

// run runs a short command that does not fork (iproute2), bounded by ctx or
// by cmdTimeout, and returns its stdout; the error carries the combined
// output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmdTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = time.Second
	var stdout bytes.Buffer
	var combined lockedBuffer
	cmd.Stdout = teeWriter{&stdout, &combined}
	cmd.Stderr = &combined
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(combined.String()))
	}
	return stdout.String(), nil
}

var (
	availOnce sync.Once
	availErr  error
)

// Available reports whether labs can be built here: Linux, root, iproute2,
// and a kernel that creates network namespaces, veth pairs and bridges. It
// finds out by building and deleting a throw-away namespace (once per
// process; the answer is cached). The error says what is missing.
func Available() error {
	availOnce.Do(func() { availErr = available() })
	return availErr
}

func available() error {
	if os.Getenv(qemuEnv) == "1" {
		return fmt.Errorf("lab: under qemu-user (%s=1), whose netlink translation is incomplete; namespace tests run natively", qemuEnv)
	}
	if runtime.GOOS != "linux" {
		return fmt.Errorf("lab: network namespaces need Linux, this is %s", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("lab: not root (euid %d)", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("lab: iproute2 missing: %w", err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("lab: kernel without network namespaces: %w", err)
	}
	const checkPrefix = "labcheck"
	SweepStale(checkPrefix)
	ns := fmt.Sprintf("%s%d.0-x", checkPrefix, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("lab: cannot create a network namespace: %w", err)
	}
	defer deleteNS(ns)
	if _, err := ipIn(ctx, ns, "link", "add", "name", "chka", "type", "veth", "peer", "name", "chkb"); err != nil {
		return fmt.Errorf("lab: cannot create a veth pair: %w", err)
	}
	if _, err := ipIn(ctx, ns, "link", "add", "name", "chkbr", "type", "bridge"); err != nil {
		return fmt.Errorf("lab: cannot create a bridge: %w", err)
	}
	return nil
}

// Within polls cond every millisecond and fails t when it does not hold
// within d; it logs how long it took. For tests that check how soon the
// kernel's state shows (an address, a link) through carpd's glue.
func Within(t TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not seen within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("%s: seen after %v", what, time.Since(start))
}

// Require skips t unless Available. With CARPD_REQUIRE_NETNS=1 in the
// environment it fails t instead, so that CI cannot pass by skipping.
func Require(t TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("needs root and network namespaces (%s=1): %v", requireEnv, err)
	}
	t.Skipf("needs root and network namespaces: %v", err)
}

// SweepStale deletes the namespaces named `<prefix><pid>.<seq>-<name>` whose
// pid no longer exists: the leftovers of a lab whose process crashed before
// Close. Processes still running inside such a namespace are SIGKILLed
// first. Namespaces of live processes, including this one, are left alone.
// It returns the names it deleted.
func SweepStale(prefix string) ([]string, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab: bad prefix %q", prefix)
	}
	entries, err := os.ReadDir(nsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		m := staleRE.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || pid == os.Getpid() || pidAlive(pid) {
			continue
		}
		killNSProcs(e.Name())
		if err := deleteNS(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// killNSProcs SIGKILLs the processes left in a lab namespace.
func killNSProcs(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}
