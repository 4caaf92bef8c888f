package config

import (
	"net/netip"
	"time"

	"github.com/carpd/carpd/internal/ctsync/wire"
)

// Defaults of the sync section.
const (
	DefaultSyncPort        = 7112 // 112 for CARP
	DefaultSyncWindow      = 200 * time.Millisecond
	DefaultSyncRefresh     = 60 * time.Second
	DefaultSyncBulkTimeout = 60 * time.Second
	DefaultSyncDemotion    = 32 // OpenBSD pfsync's bulk-update demotion
)

// Sync is the `config sync` section: connection-state replication.
type Sync struct {
	Enabled bool
	// Interface is the dedicated sync link; adverts are bound to it.
	Interface string
	// Peer is the unicast peer; Group a multicast group (one of the two).
	Peer  netip.Addr
	Group netip.Addr
	Port  uint16
	// Key is the pre-shared key as configured: 64 hex digits or a
	// passphrase (internal/ctsync/wire.KeyFromConfig checks its strength).
	Key string
	// Bandwidth caps the sync traffic in bytes per second; 0 = no cap.
	Bandwidth uint64
	// Window is the coalescing window: several updates of a flow within it
	// are sent once, and flows born and dead within it never.
	Window time.Duration
	// Refresh is how often long-lived flows' timeouts are refreshed on the
	// peer.
	Refresh time.Duration
	// BulkTimeout bounds how long CARP stays demoted waiting for the
	// initial bulk transfer (a dead peer must not pin the demotion).
	BulkTimeout time.Duration
	// Demotion is added to every vhid until the bulk transfer completes.
	Demotion uint8
	Filter   SyncFilter
	// LeaseSync replicates dnsmasq's lease file LeaseFile to the peer
	// (DHCP lease sync, internal/daemon/leases.go).
	LeaseSync bool
	LeaseFile string
}

// DefaultLeaseFile is dnsmasq's lease file on OpenWrt.
const DefaultLeaseFile = "/tmp/dhcp.leases"

// SyncFilter selects the flows to sync. The default is every forwarded
// TCP, UDP, ICMP and ICMPv6 flow (never the router's own traffic nor the
// sync link itself). SCTP can be added, but the kernel checks SCTP
// verification tags that ctnetlink cannot set, so synced SCTP flows do not
// survive a failover.
type SyncFilter struct {
	Protocols []uint8        // empty: the default set
	Include   []netip.Prefix // if set, the original source or destination must be in one
	Exclude   []netip.Prefix // the original source or destination in one: skipped
	Zones     []uint16       // if set, only these zones
	Mark      uint32
	MarkMask  uint32 // 0: marks are not looked at
	// MinTCPState is the lowest TCP conntrack state synced: 0 = all,
	// 3 = ESTABLISHED (flow.TCPEstablished).
	MinTCPState uint8
	// AssuredOnly syncs only flows the kernel marked ASSURED.
	AssuredOnly bool
}

// DefaultSync returns the defaults (disabled).
func DefaultSync() Sync {
	return Sync{Port: DefaultSyncPort, Window: DefaultSyncWindow, Refresh: DefaultSyncRefresh,
		BulkTimeout: DefaultSyncBulkTimeout, Demotion: DefaultSyncDemotion, LeaseFile: DefaultLeaseFile}
}

func (s *Sync) validate(add func(sec, opt, format string, a ...any)) {
	if !s.Enabled {
		return
	}
	if s.Interface == "" {
		add("sync", "interface", "is required: the dedicated link to the peer")
	}
	switch {
	case s.Peer.IsValid() && s.Group.IsValid():
		add("sync", "group", "set either peer (unicast) or group (multicast), not both")
	case !s.Peer.IsValid() && !s.Group.IsValid():
		add("sync", "peer", "is required (or group for multicast)")
	case s.Group.IsValid() && !s.Group.IsMulticast():
		add("sync", "group", "%s is not a multicast address", s.Group)
	case s.Peer.IsValid() && (s.Peer.IsMulticast() || s.Peer.IsUnspecified()):
		add("sync", "peer", "%s is not a unicast address", s.Peer)
	}
	if s.Key == "" {
		add("sync", "key", "is required: sync traffic is always authenticated and encrypted")
	} else if _, err := wire.KeyFromConfig(s.Key); err != nil {
		add("sync", "key", "%v", err)
	}
	if s.Window < 10*time.Millisecond || s.Window > 10*time.Second {
		add("sync", "window", "must be between 10ms and 10s, not %v", s.Window)
	}
	if s.Refresh < 5*time.Second {
		add("sync", "refresh", "must be at least 5s, not %v", s.Refresh)
	}
	if s.Bandwidth != 0 && s.Bandwidth < 2000 {
		add("sync", "bandwidth", "%d bytes/s is too little to sync anything (at least 16kbit)", s.Bandwidth)
	}
}
