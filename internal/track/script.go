package track

import (
	"context"
	"fmt"
	"strings"
)

// scriptProber runs the command each round, killed at the timeout: exit 0
// is good, anything else (a failure to start, a non-zero exit, a signal, a
// hung script killed at the timeout) is bad.
type scriptProber struct{ t *Tracker }

func (s *scriptProber) round(ctx context.Context) result {
	cfg := s.t.cfg
	if len(cfg.Command) == 0 {
		return result{value: cfg.Weight, reason: "no command", err: "no command"}
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	out, err := s.t.env.Run(rctx, cfg.Command)
	cancel()
	if err == nil {
		return result{reason: cfg.Command[0] + " exited 0"}
	}
	why := err.Error()
	if rctx.Err() == context.DeadlineExceeded {
		why = fmt.Sprintf("timed out after %v", cfg.Timeout)
	}
	reason := cfg.Command[0] + ": " + why
	if o := lastLine(out); o != "" {
		reason += ": " + truncate(o, 80)
	}
	return result{value: cfg.Weight, reason: reason}
}

func (s *scriptProber) wake() <-chan struct{} { return nil }
func (s *scriptProber) close()                {}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
