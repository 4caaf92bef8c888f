package main

import (
	"testing"
)

// TestConvert: the import moves to carpd's group (or a group of its own),
// every slog. becomes logx., and a converted file stays as it is.
func TestConvert(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"with carpd imports", `package x

import (
	"context"
	"log/slog"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/vip"
	"golang.org/x/sys/unix"
)

// f logs through a *slog.Logger.
func f(log *slog.Logger, l *slog.LevelVar) {
	log = slog.New(slog.DiscardHandler)
	l.Set(slog.LevelDebug)
	_, _, _, _, _ = context.Background, time.Now, config.DefaultPath, vip.New, unix.AF_INET
}
`, `package x

import (
	"context"
	"time"

	"github.com/carpd/carpd/internal/config"
	"github.com/carpd/carpd/internal/logx"
	"github.com/carpd/carpd/internal/vip"
	"golang.org/x/sys/unix"
)

// f logs through a *logx.Logger.
func f(log *logx.Logger, l *logx.LevelVar) {
	log = logx.New(logx.DiscardHandler)
	l.Set(logx.LevelDebug)
	_, _, _, _, _ = context.Background, time.Now, config.DefaultPath, vip.New, unix.AF_INET
}
`},
		{"standard library only", `package x

import (
	"log/slog"
	"os"
)

var l = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("a", 1)
`, `package x

import (
	"os"

	"github.com/carpd/carpd/internal/logx"
)

var l = logx.New(logx.NewTextHandler(os.Stderr, &logx.HandlerOptions{Level: logx.LevelWarn})).With("a", 1)
`},
		{"other modules only", `package x

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

var _, _ = slog.LevelInfo, unix.AF_INET
`, `package x

import (
	"github.com/carpd/carpd/internal/logx"
	"golang.org/x/sys/unix"
)

var _, _ = logx.LevelInfo, unix.AF_INET
`},
		{"single import", `package x

import "log/slog"

var _ *slog.Logger
`, `package x

import "github.com/carpd/carpd/internal/logx"

var _ *logx.Logger
`},
		{"block of one", `package x

import (
	"log/slog"
)

var _ *slog.Logger
`, `package x

import (
	"github.com/carpd/carpd/internal/logx"
)

var _ *logx.Logger
`},
	} {
		got, changed, err := convert("x.go", []byte(c.in))
		if err != nil || !changed || string(got) != c.want {
			t.Errorf("%s: changed %v, %v:\n%s\nwant\n%s", c.name, changed, err, got, c.want)
			continue
		}
		if again, changed, err := convert("x.go", got); err != nil || changed || string(again) != c.want {
			t.Errorf("%s: converting again changed it (%v):\n%s", c.name, err, again)
		}
	}
	if _, _, err := convert("x.go", []byte("package x\n\nimport s \"log/slog\"\n\nvar _ *s.Logger\n")); err == nil {
		t.Error("a renamed log/slog import was converted")
	}
}
