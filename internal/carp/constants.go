package carp

import "time"

// Protocol constants (docs/carp-protocol.md#encapsulation).
const (
	// IPProto is the IP protocol number CARP shares with VRRP.
	IPProto = 112
	// HeaderLen is the size of a CARP advertisement: the whole IP payload.
	HeaderLen = 36
	// Version is the only CARP version the BSDs and ucarp accept.
	Version = 2
	// TypeAdvertisement is the only CARP message type.
	TypeAdvertisement = 1
	// AuthLen is the counter plus HMAC length in 32-bit words, always 7.
	AuthLen = 7
	// TTL is the IPv4 TTL / IPv6 hop limit of every advertisement.
	TTL = 255
	// BowOutAdvBase and BowOutAdvSkew form the "bow out" advertisement a
	// master sends when it stops gracefully (docs/carp-protocol.md#bow-out):
	// every backup sees an interval far beyond 3*advbase and takes over at
	// once.
	BowOutAdvBase = 255
	BowOutAdvSkew = 255
	// MaxFBSDSkew is the largest advskew FreeBSD puts on the wire when it
	// mirrors demotion into the skew (docs/carp-protocol.md#demotion).
	MaxFBSDSkew = 240
	// MasterDownMultiplier: a backup waits this many of its own intervals
	// without hearing the master before it takes over (OpenBSD rev 1.370).
	MasterDownMultiplier = 3
)

// Implementation constants: carpd's own choices, not part of the protocol.
const (
	// AnnounceRepeatAdverts: the gratuitous ARP / unsolicited NA burst is
	// sent at takeover and again after this many adverts, as OpenBSD does
	// "for L3 switches" (docs/carp-protocol.md#takeover-actions).
	AnnounceRepeatAdverts = 2
	// BowOutLinger is the longest a master that bowed out keeps its VIPs,
	// waiting to hear the backup that takes over: carpd answers a bow-out
	// within milliseconds, ucarp (libpcap, 1 s capture timeout) in up to a
	// second. Graceful handover then leaves no moment without a holder.
	BowOutLinger = time.Second
	// BowOutAfterHeard is how long the VIPs stay once the new master is
	// heard: its gratuitous ARP follows its first advert.
	BowOutAfterHeard = 50 * time.Millisecond
	// SendErrorDemoteThreshold consecutive send errors demote by one, and as
	// many consecutive successes undo it (docs/carp-protocol.md#demotion).
	SendErrorDemoteThreshold = 3
)
