// Package ctsync replicates the kernel's connection-tracking table to a
// peer router, so established and NATed connections survive a CARP
// failover: carpd's counterpart of OpenBSD's pfsync and of conntrackd.
// The protocol is described in docs/sync-protocol.md, what the receiver
// accepts in docs/sync-security.md, and how an event travels in
// docs/architecture.md.
//
// Layout:
//
//	flow/     the shared flow model (pure)
//	wire/     frame and record codec, AEAD, replay window (pure)
//	kernel/   conntrack source (events, dump) and sink (inject, delete) over netlink
package ctsync
