package flow

import (
	"errors"
	"fmt"
)

// Refusal is why a filter leaves a flow out: on the sender, a flow not
// worth syncing; on the receiver, a flow of the peer it does not inject.
// The zero Refusal accepts.
type Refusal uint8

// Refusals, one per rule of the sync filter (internal/ctsync/kernel.Filter).
const (
	Accepted Refusal = iota
	// RefusedInvalid: not a valid flow (Flow.Valid).
	RefusedInvalid
	// RefusedProtocol: a protocol the filter does not select.
	RefusedProtocol
	// RefusedAddress: an address nothing forwards (loopback, multicast,
	// link-local, ...) or outside the include/inside the exclude prefixes.
	RefusedAddress
	// RefusedLocal: a connection of the router itself (to or from one of
	// its own addresses), or the sync traffic.
	RefusedLocal
	// RefusedZone: a conntrack zone the filter does not select.
	RefusedZone
	// RefusedMark: a mark the filter does not select.
	RefusedMark
	// RefusedState: a TCP state before the filter's minimum, not assured
	// where only assured flows are, or dying.
	RefusedState
)

func (r Refusal) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case RefusedInvalid:
		return "invalid"
	case RefusedProtocol:
		return "protocol"
	case RefusedAddress:
		return "address"
	case RefusedLocal:
		return "local"
	case RefusedZone:
		return "zone"
	case RefusedMark:
		return "mark"
	case RefusedState:
		return "state"
	}
	return fmt.Sprintf("Refusal(%d)", uint8(r))
}

// ErrLocalClash: a flow of the peer was not injected because an entry
// that did not come from the peer (a connection of this router, or one it
// forwards) holds its original or reply tuple. Sync never replaces those.
var ErrLocalClash = errors.New("a local conntrack entry holds the flow's tuple")
