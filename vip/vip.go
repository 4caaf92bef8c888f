package vip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// Announcer adds, removes and announces virtual addresses on one interface.
// It is the seam between the CARP state machine (which decides) and the
// kernel (which acts); the daemon owns one per (interface, vhid) and tests
// substitute a fake.
//
// Every method applies all of its arguments even when one fails, and returns
// the failures joined with errors.Join, so that one bad address does not keep
// the others from moving on takeover.
type Announcer interface {
	// Add configures the prefixes on the interface. The address is
	// p.Addr() and the prefix length p.Bits() (host bits are kept:
	// 192.0.2.10/24 adds 192.0.2.10 with a /24 subnet). Add is idempotent:
	// it has replace semantics (like "ip addr replace"). IPv6 addresses are
	// added with IFA_F_NODAD so they are usable at once, never tentative.
	Add(ctx context.Context, p []netip.Prefix) error

	// Remove deletes exactly these address/prefix-length pairs. It is
	// idempotent: absent addresses, and a missing interface, are not errors.
	Remove(ctx context.Context, p []netip.Prefix) error

	// Announce sends one burst on the interface: for each IPv4 address a
	// gratuitous ARP request and a gratuitous ARP reply, then for each IPv6
	// address one unsolicited Neighbor Advertisement with the Override flag.
	// The caller decides how often to call it
	// (docs/carp-protocol.md#takeover-actions: once on takeover and once
	// more two adverts later); Announce never repeats on its own.
	Announce(ctx context.Context, a []netip.Addr) error

	// Close releases the Announcer. It does not remove any address.
	Close() error
}

// LinkEvent reports that a link's usability changed (see LinkUp), that a
// link appeared, or that it disappeared (Up is false then). Index is the
// kernel's interface index at the time of the event; a re-created interface
// keeps its Name but gets a new Index.
type LinkEvent struct {
	Name  string
	Index int
	Up    bool
}

// String implements fmt.Stringer.
func (e LinkEvent) String() string {
	state := "down"
	if e.Up {
		state = "up"
	}
	return fmt.Sprintf("%s(%d) %s", e.Name, e.Index, state)
}

// ifNameSize is IFNAMSIZ from <linux/if.h>, which includes the trailing NUL:
//
//	#define IFNAMSIZ 16
const ifNameSize = 16

// checkInterfaceName applies the kernel's dev_valid_name rules
// (net/core/dev.c) so a typo fails at New rather than at takeover.
func checkInterfaceName(name string) error {
	if name == "" || len(name) >= ifNameSize || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("vip: %q: %w", name, errInvalidInterfaceName)
	}
	return nil
}

// checkPrefix rejects prefixes that cannot be configured on an interface.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() || p.Addr().Is4In6() {
		return fmt.Errorf("vip: %v: %w", p, errInvalidPrefix)
	}
	return nil
}

// checkAddr rejects addresses that cannot be announced: announcements are for
// unicast addresses only.
func checkAddr(a netip.Addr) error {
	if !a.IsValid() || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() ||
		(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fmt.Errorf("vip: %v: %w", a, errInvalidAddr)
	}
	return nil
}

// discardIfNil returns log, or a logger that discards everything when log is
// nil, so that constructors accept a nil logger.
func discardIfNil(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
