//go:build !linux

package vip

import (
	"context"
	"net/netip"

	"github.com/carpd/carpd/internal/logx"
)

// LinkUp reports whether the named interface is up. Only Linux is supported.
func LinkUp(ifname string) (bool, error) { return false, unimplemented() }

// Watcher reports link changes. Only Linux is supported.
type Watcher struct{}

// Watch returns an error naming runtime.GOOS: only Linux is supported.
func Watch(ctx context.Context, log *logx.Logger) (*Watcher, error) {
	return nil, unimplemented()
}

// Events returns a nil channel.
func (*Watcher) Events() <-chan LinkEvent { return nil }

// Close does nothing.
func (*Watcher) Close() error { return nil }

// Addrs returns nil.
func (*Watcher) Addrs(ifname string) []netip.Addr { return nil }

// IsLocal returns false.
func (*Watcher) IsLocal(netip.Addr) bool { return false }
