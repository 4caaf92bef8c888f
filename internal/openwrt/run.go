package openwrt

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// errWaitDelay has the text of os/exec's ErrWaitDelay: the process exited
// (or was killed) but something it started kept the output pipe open past
// the wait delay.
var errWaitDelay = errors.New("exec: WaitDelay expired before I/O complete")

// runCombined runs the program at path with args and exactly env (nothing
// inherited), stdin from /dev/null, and returns what it wrote to stdout and
// stderr together. It behaves like os/exec's
//
//	cmd := exec.CommandContext(ctx, path, args...)
//	cmd.Env, cmd.WaitDelay = env, waitDelay
//	out, err := cmd.CombinedOutput()
//
// for a path that names a file, with one difference: the program runs in a
// process group of its own, and when ctx is done the whole group is
// stopped, not only the program: SIGTERM, then SIGKILL after killGrace (or
// as soon as the program is gone, for children that outlive it). A hung
// hook script and whatever it started are gone before the next one runs.
// Once the process has exited or ctx is done, the output is read for at
// most waitDelay more, then the pipe is closed (a backgrounded grandchild
// of a program that exited by itself may hold it open for ever). An
// unsuccessful exit is an error reading "exit status N", "signal:
// terminated" or "signal: killed", as exec.ExitError prints.
//
// Not os/exec itself: the Cmd machinery (LookPath, io.Copy through
// splice/sendfile, the environment and Getwd handling) costs about 180 KB
// of the MIPS binary (package/SIZE.md).
// killGrace is how long a timed-out program's process group has between
// SIGTERM and SIGKILL.
const killGrace = time.Second

func runCombined(ctx context.Context, path string, args, env []string, waitDelay time.Duration) ([]byte, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	if env == nil {
		env = []string{} // nil would inherit carpd's environment
	}
	argv := append([]string{path}, args...)
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: []*os.File{devnull, pw, pw}, Sys: groupAttr()})
	pw.Close() // the child has its copy; EOF comes when the last holder closes it
	if err != nil {
		return nil, err // *fs.PathError "fork/exec PATH: ..."
	}

	var out tailBuffer
	copied := make(chan error, 1)
	go func() {
		// A plain read loop: io.Copy would link *os.File's WriteTo
		// (splice and sendfile), about 30 KB of mips code.
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				copied <- err
				return
			}
		}
	}()
	var state *os.ProcessState
	var waitErr error
	exited := make(chan struct{})
	go func() {
		state, waitErr = p.Wait()
		close(exited)
	}()

	select {
	case <-exited:
	case <-ctx.Done():
		_ = signalGroup(p, syscall.SIGTERM)
		grace := time.NewTimer(killGrace)
		select {
		case <-exited:
		case <-grace.C:
		}
		grace.Stop()
		// The leader may be gone while its children (which got the same
		// SIGTERM) trap or ignore it: the group goes in any case. The
		// group id is not reused while a member lives.
		_ = signalGroup(p, syscall.SIGKILL)
	}
	delay := time.NewTimer(waitDelay)
	defer delay.Stop()
	var ioErr error
	select {
	case ioErr = <-copied:
	case <-delay.C:
		pr.Close() // ends the reader with an error
		<-copied
		ioErr = errWaitDelay
	}
	<-exited
	switch {
	case waitErr != nil:
		return out.b, waitErr
	case !state.Success():
		return out.b, errors.New(state.String())
	}
	return out.b, ioErr
}

// maxOutput is how much of a program's output runCombined keeps: its last
// 64 KiB. A runaway script must not fill a small router's memory; what
// carpd reads (an error message, a script tracker's last line) is at the
// end.
const maxOutput = 64 << 10

// tailBuffer keeps the last maxOutput bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxOutput:]...)
	}
	return len(p), nil
}
