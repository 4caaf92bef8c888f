package vip

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/carpd/carpd/internal/logx"
)

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
func discardIfNil(log *logx.Logger) *logx.Logger {
	if log == nil {
		return logx.New(logx.DiscardHandler)
	}
	return log
}
