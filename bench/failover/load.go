//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// loadedImpl is a row of an implementation run while both cores are busy:
// `stress-ng --cpu N` at niceness 0 runs from before the lab's daemons
// start until the trial or the idle window ends (issue #14: no false
// takeover and the same outage when the router's cores are loaded).
type loadedImpl struct{ impl }

func (l *loadedImpl) name() string { return l.impl.name() + ", cores loaded" }
func (l *loadedImpl) settings() string {
	return l.impl.settings() + fmt.Sprintf("; `stress-ng --cpu %d` at niceness 0 for the whole trial", loadCPUs)
}

// loadCPUs is stress-ng's worker count (-load-cpus, default nproc).
var loadCPUs = 2

// benchNice is the niceness this process runs at (-nice), daemonNice the
// niceness the daemons are started at (-daemon-nice): the benchmark's own
// prober and sniffer stay protected from the load, the daemons start as a
// router would start them and must fend for themselves.
var benchNice, daemonNice int

// niceArgs prefixes args with nice(1) so that the command runs at niceness
// want whatever this process runs at.
func niceArgs(want int, args []string) []string {
	if adj := want - benchNice; adj != 0 {
		return append([]string{"nice", "-n", strconv.Itoa(adj)}, args...)
	}
	return args
}

// startLoad starts stress-ng in the root namespace at niceness 0; stop
// kills its process group and waits for it.
func startLoad() (stop func(), err error) {
	args := niceArgs(0, []string{"stress-ng", "--cpu", strconv.Itoa(loadCPUs), "--timeout", "30m", "--quiet"})
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stress-ng: %w (apt-get install stress-ng)", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Let the workers start and take the cores.
	select {
	case err := <-exited:
		return nil, fmt.Errorf("stress-ng exited at start: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}, nil
}

// maybeLoad starts the load when im is a loaded row.
func maybeLoad(im impl) (stop func(), err error) {
	if _, ok := im.(*loadedImpl); !ok {
		return func() {}, nil
	}
	return startLoad()
}
