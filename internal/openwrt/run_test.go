package openwrt

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

// TestRunCombined checks runCombined against what os/exec's CombinedOutput
// with CommandContext and WaitDelay gives for the same programs, except
// that a timeout stops the process group with SIGTERM first.
func TestRunCombined(t *testing.T) {
	sh := func(body string) (string, []string) { return "/bin/sh", []string{"-c", body} }
	for _, tc := range []struct {
		name    string
		body    string
		env     []string
		timeout time.Duration
		out     string
		err     string
	}{
		{name: "ok", body: `echo out; echo err >&2; echo "$A"`, env: []string{"A=1"}, out: "out\nerr\n1\n"},
		{name: "env only what is given", body: `echo "${HOME:-none}"`, out: "none\n"},
		{name: "exit status", body: `echo x; exit 3`, out: "x\n", err: "exit status 3"},
		{name: "stdin is /dev/null", body: `cat; echo done`, out: "done\n"},
		{name: "terminated at the timeout", body: `exec sleep 30`, timeout: 100 * time.Millisecond, err: "signal: terminated"},
		{name: "killed when it ignores SIGTERM", body: `trap '' TERM; sleep 30; echo survived`, timeout: 100 * time.Millisecond, err: "signal: killed"},
		{name: "grandchild holds the pipe", body: `sleep 30 & echo bg`, out: "bg\n", err: errWaitDelay.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			path, args := sh(tc.body)
			start := time.Now()
			out, err := runCombined(ctx, path, args, tc.env, 200*time.Millisecond)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if string(out) != tc.out {
				t.Errorf("output %q, want %q", out, tc.out)
			}
			if got := errString(err); got != tc.err {
				t.Errorf("error %q, want %q", got, tc.err)
			}
		})
	}
}

func TestRunCombinedNoProgram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none")
	_, err := runCombined(context.Background(), path, nil, nil, time.Second)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "fork/exec" || pe.Path != path || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want fork/exec %s: no such file or directory", err, path)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
