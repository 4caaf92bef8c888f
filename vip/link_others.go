//go:build !linux

package vip

import (
	"context"
	"log/slog"
)

// LinkUp reports whether the named interface is up. Only Linux is supported.
func LinkUp(ifname string) (bool, error) { return false, unimplemented() }

// LinkWatcher reports link changes. Only Linux is supported.
type LinkWatcher struct{}

// WatchLinks returns an error naming runtime.GOOS: only Linux is supported.
func WatchLinks(ctx context.Context, log *slog.Logger) (*LinkWatcher, error) {
	return nil, unimplemented()
}

// Events returns a nil channel.
func (*LinkWatcher) Events() <-chan LinkEvent { return nil }

// Close does nothing.
func (*LinkWatcher) Close() error { return nil }
