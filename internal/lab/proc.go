package lab

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// outputLimit is how much of a process's output a Proc keeps.
	outputLimit = 256 << 10
	// pipeWaitDelay bounds how long Wait waits for a process's output
	// pipes after it has exited (a grandchild that left its process group
	// may still hold them).
	pipeWaitDelay = 2 * time.Second
)

// A Proc is a process started in a host with Host.Start. Its stdout and
// stderr go, interleaved, into a ring buffer holding the last 256 KiB, and
// optionally to a log file. The lab SIGKILLs it on Close.
type Proc struct {
	host *Host
	args []string
	cmd  *exec.Cmd
	out  *ring // nil for Run's commands
	log  *os.File

	done chan struct{} // closed once the process is reaped and err is set
	err  error         // exit status; written before done is closed

	mu     sync.Mutex // guards exited
	exited bool       // the process has exited; its pid must not be signalled
}

// StartOptions are the options of Host.StartWith.
type StartOptions struct {
	// LogFile, if set, receives a copy of the output; it is created or
	// truncated, and its directory must exist.
	LogFile string
	// Env is added to the test binary's environment ("KEY=value").
	Env []string
}

// startConfig is what start needs beyond the arguments.
type startConfig struct {
	StartOptions
	stdout, stderr io.Writer // Run's buffers; nil means the ring buffer
}

// Start starts args (a command and its arguments) in the host's namespace
// through `ip netns exec`, which execs it, so Pid is the command's own pid.
// The process leads a process group of its own and is SIGKILLed by the
// kernel if the test binary dies. It runs until it exits, Kill, or
// Lab.Close.
func (h *Host) Start(args ...string) (*Proc, error) {
	return h.StartWith(StartOptions{}, args...)
}

// StartWith is Start with options.
func (h *Host) StartWith(opts StartOptions, args ...string) (*Proc, error) {
	return h.start(startConfig{StartOptions: opts}, args)
}

func (h *Host) start(cfg startConfig, args []string) (*Proc, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("lab: %s: no command", h)
	}
	l := h.lab
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.ops.Done()

	cmd := exec.Command("ip", append([]string{"netns", "exec", h.NS}, args...)...)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = pipeWaitDelay
	if len(cfg.Env) > 0 {
		cmd.Env = append(os.Environ(), cfg.Env...)
	}
	p := &Proc{host: h, args: args, cmd: cmd, done: make(chan struct{})}
	if cfg.stdout != nil {
		cmd.Stdout, cmd.Stderr = cfg.stdout, cfg.stderr
	} else {
		p.out = &ring{max: outputLimit}
		var w io.Writer = p.out
		if cfg.LogFile != "" {
			f, err := os.Create(cfg.LogFile)
			if err != nil {
				return nil, fmt.Errorf("lab: %s: %w", h, err)
			}
			p.log = f
			w = teeWriter{p.out, f}
		}
		// One writer for both: exec.Cmd then uses a single pipe, so the
		// interleaving is the process's own.
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("lab: %s: start %s: %w", h, strings.Join(args, " "), err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	go p.wait()
	return p, nil
}

// wait reaps the process. It first waits for the exit without reaping, so
// that the pid (and process group id) stays reserved while it kills what is
// left of the process group, then reaps.
func (p *Proc) wait() {
	pid := p.cmd.Process.Pid
	err := waitExited(pid)
	p.mu.Lock()
	if err == nil {
		_ = killGroup(pid, syscall.SIGKILL)
	}
	p.exited = true
	p.mu.Unlock()
	p.err = p.cmd.Wait()
	if p.log != nil {
		p.log.Close()
	}
	close(p.done)
}

// untrack removes p from its lab's list (Run's short-lived commands).
func (p *Proc) untrack() {
	l := p.host.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.procs = slices.DeleteFunc(l.procs, func(q *Proc) bool { return q == p })
	}
}

// String returns "host: command args".
func (p *Proc) String() string {
	return fmt.Sprintf("%s: %s", p.host, strings.Join(p.args, " "))
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (not its group). It returns
// os.ErrProcessDone once the process has exited.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return os.ErrProcessDone
	}
	return signalPid(p.Pid(), sig)
}

// Kill SIGKILLs the process and its process group. It does not wait; see
// Wait. Killing an exited process is not an error.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return
	}
	_ = killGroup(p.Pid(), syscall.SIGKILL)
	_ = signalPid(p.Pid(), syscall.SIGKILL)
}

// Wait waits up to timeout for the process to exit and returns its exit
// status: nil for exit code 0, an *exec.ExitError otherwise, or ErrTimeout
// if it is still running.
func (p *Proc) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%w: %s (pid %d) still running after %v", ErrTimeout, p, p.Pid(), timeout)
	}
}

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output returns the last 256 KiB of the process's stdout and stderr.
func (p *Proc) Output() string {
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// ring is an io.Writer that keeps the last max bytes written to it.
type ring struct {
	mu      sync.Mutex // guards the fields below
	max     int
	buf     []byte // at most max bytes once Write returns
	dropped int64  // bytes discarded from the front
}

func (r *ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(b)
	if len(b) >= r.max {
		r.dropped += int64(len(r.buf) + len(b) - r.max)
		r.buf = append(r.buf[:0], b[len(b)-r.max:]...)
		return n, nil
	}
	if over := len(r.buf) + len(b) - r.max; over > 0 {
		r.dropped += int64(over)
		r.buf = r.buf[:copy(r.buf, r.buf[over:])]
	}
	r.buf = append(r.buf, b...)
	return n, nil
}

// String returns the bytes kept, preceded by a note if some were dropped.
func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped > 0 {
		return fmt.Sprintf("[lab: %d bytes dropped]\n%s", r.dropped, r.buf)
	}
	return string(r.buf)
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (lb *lockedBuffer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.Write(p)
}

func (lb *lockedBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.String()
}

// teeWriter writes to w and copies to mirror, whose errors are ignored (a
// full disk must not stall the process under test).
type teeWriter struct {
	w, mirror io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	_, _ = t.mirror.Write(p[:n])
	return n, err
}
