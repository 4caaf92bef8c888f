// Package ctsync replicates the kernel's connection-tracking table to a
// peer router, so established and NATed connections survive a CARP
// failover: carpd's counterpart of OpenBSD's pfsync and of conntrackd.
// The protocol is described in docs/sync-protocol.md.
//
// The Engine is one goroutine (Run) that owns all of its state, plus the
// socket reader and the kernel writer it starts and waits for. Its files,
// one concern each, can be read one at a time:
//
//	engine.go       Config, the Engine's state, the Run loop and its timers, Resync, Takeover
//	session.go      epochs, HELLO and keepalives, a peer whose clock went back, peer restarts
//	transport.go    frames out within the byte cap; acks, RTT, loss and retransmission
//	receive.go      the socket reader; one frame's records dispatched
//	local.go        our flows: kernel events and dumps, priorities, records to send
//	peer.go         the peer's flows: our filter and clamp, the peer table
//	apply.go        kernel writes on their own goroutine, with a bounded queue
//	bulk.go         the whole-table transfer and its digest
//	antientropy.go  WANT, and the purges of the peer's flows gone there
//	carp.go         the CARP states each router tells the other (split brain)
//	config.go       configuration records out within the cap, and in (config sync)
//	status.go       Status and its counters
//	clock.go        the Clock the engine reads time from
//	table.go        the compact flow tables
//
// Packages:
//
//	flow/        the shared flow model (pure)
//	wire/        frame and record codec, AEAD, replay window (pure)
//	kernel/      conntrack over netlink: dump and events, inject and delete
//	ctsynctest/  a fake conntrack kernel and a fake clock for unit tests
package ctsync
