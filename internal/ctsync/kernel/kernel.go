package kernel

import (
	"time"

	"github.com/carpd/carpd/internal/logx"
)

// Conntrack is conntrack as ctsync.Kernel, the engine's own interface
// (the consumer owns the seam), describes it: the engine reads it on the
// primary (Each, Events) and writes it on the backup (Inject, Delete);
// daemon passes a *Conntrack to ctsync.New, which checks that it fits.

// Defaults for Config.
const (
	// DefaultEventBuffer is the capacity of the Events channel.
	DefaultEventBuffer = 4096
	// DefaultSocketBuffer is the receive buffer asked for the event
	// socket, as conntrackd's NetlinkBufferSizeMaxGrowth; the kernel
	// doubles it, which holds over ten thousand events.
	DefaultSocketBuffer = 8 << 20
	// EventWait is how long the event reader waits for room on a full
	// Events channel before it drops the event and owes the consumer an
	// EventOverrun. Meanwhile the kernel socket buffer takes the burst.
	EventWait = 100 * time.Millisecond
)

// Config configures Open.
type Config struct {
	// NetNS is a file descriptor of the network namespace to work in (an
	// open /run/netns/NAME or /proc/PID/ns/net), as in netlink.Config; 0
	// means the namespace of the calling thread. Open duplicates it, so
	// the caller may close its copy.
	NetNS int
	// Filter selects the flows that Dump and Events return. The zero
	// Filter keeps the flows of the default protocols; Filter.Local tells
	// router-local flows apart (the daemon passes its one watcher of
	// links and addresses, vip.Watcher.IsLocal).
	Filter Filter
	// Log receives warnings (lost events, reopened sockets) and debug
	// messages; nil discards them.
	Log *logx.Logger
	// EventBuffer is the capacity of the Events channel; 0 means
	// DefaultEventBuffer.
	EventBuffer int
	// SocketBuffer is the SO_RCVBUF asked for the event socket (with
	// SO_RCVBUFFORCE, falling back to SO_RCVBUF capped by
	// net.core.rmem_max); 0 means DefaultSocketBuffer.
	SocketBuffer int
	// SkipOwnWrites drops the events caused by this Conntrack's own Apply
	// and Delete (the kernel stamps them with the port id of the socket
	// that asked), so that a backup does not echo what it injected.
	SkipOwnWrites bool
}

// Stats counts what the event reader did. The counters only grow.
type Stats struct {
	// Events is the number of NEW, UPDATE and DESTROY events put on the
	// Events channel.
	Events uint64
	// Filtered is the number of events the Filter (or SkipOwnWrites)
	// left out.
	Filtered uint64
	// Dropped is the number of events dropped because the Events channel
	// was full or an EventOverrun was pending.
	Dropped uint64
	// KernelDrops is the number of events the kernel could not queue on
	// the event socket (its drop counter, or ENOBUFS reports).
	KernelDrops uint64
	// Overruns is the number of EventOverrun events put on the channel.
	Overruns uint64
	// Errors is the number of event messages that could not be parsed
	// and of socket failures.
	Errors uint64
}
