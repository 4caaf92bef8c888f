//go:build !linux

package vip

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/carpd/carpd/internal/logx"
)

// Linux implements carp.Announcer on Linux. On other systems New fails and its
// methods return errUnimplemented.
type Linux struct{}

// New returns an error naming runtime.GOOS: only Linux is supported.
func New(ifname string, log *logx.Logger) (*Linux, error) {
	return nil, unimplemented()
}

// Add implements carp.Announcer.
func (*Linux) Add(context.Context, []netip.Prefix) error { return unimplemented() }

// Remove implements carp.Announcer.
func (*Linux) Remove(context.Context, []netip.Prefix) error { return unimplemented() }

// Announce implements carp.Announcer.
func (*Linux) Announce(context.Context, []netip.Addr) error { return unimplemented() }

// Has reports whether p is configured on the interface.
func (*Linux) Has(context.Context, netip.Prefix) (bool, error) { return false, unimplemented() }

// Close marks the announcer closed.
func (*Linux) Close() error { return nil }

// unimplemented returns errUnimplemented naming the operating system.
func unimplemented() error {
	return fmt.Errorf("vip: %w on %s", errUnimplemented, runtime.GOOS)
}
