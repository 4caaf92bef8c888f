//go:build linux

package main

import (
	"context"
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

// lossyImpl is a row of an implementation whose backup loses adverts:
// of every 10 adverts of vhid / VRID 1 that reach it, 2 in a row are
// dropped (nftables on the backup's input hook, before the daemon's raw
// socket). Issue #14: no false takeover when up to 2 adverts in a row are
// lost.
type lossyImpl struct{ impl }

func (l *lossyImpl) name() string { return l.impl.name() + ", 2 in 10 adverts lost" }
func (l *lossyImpl) settings() string {
	return l.impl.settings() + "; on the backup, of every 10 adverts of vhid/VRID 1 the first 2 dropped (`nft ... ip protocol 112 @th,8,8 1 numgen inc mod 10 < 2 drop`)"
}

// maybeLoss installs the loss of lossyImpl rows on the backup r2.
func maybeLoss(ctx context.Context, im impl, tb *testbed) error {
	if _, ok := im.(*lossyImpl); !ok {
		return nil
	}
	for _, args := range [][]string{
		{"nft", "add", "table", "inet", "bench"},
		{"nft", "add", "chain", "inet", "bench", "in", "{ type filter hook input priority -300 ; }"},
		{"nft", "add", "rule", "inet", "bench", "in", "ip", "protocol", "112", "@th,8,8", "1", "numgen", "inc", "mod", "10", "<", "2", "drop"},
	} {
		if out, err := tb.r2.host.Run(ctx, args...); err != nil {
			return fmt.Errorf("%v: %v: %s", args, err, out)
		}
	}
	return nil
}
