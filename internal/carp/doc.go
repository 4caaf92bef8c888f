// Package carp implements the Common Address Redundancy Protocol as spoken by
// OpenBSD carp(4), FreeBSD carp(4) and ucarp: the advertisement codec and its
// HMAC-SHA1 authentication (pure), the per-vhid state machine (pure, time
// passed in), the virtual host that drives a state machine from a timer and
// its inbox, and the raw sockets of an interface.
//
// The wire format and the rules carpd follows (header, checksum, HMAC input,
// counter, timers, receive rules, tie-breaking, demotion, bow-out, IPv6,
// interoperability) are described in docs/carp-protocol.md; how an advert
// travels from the socket to the VIPs is in docs/architecture.md. The
// behaviour was derived from OpenBSD sys/netinet/ip_carp.c rev 1.370,
// FreeBSD sys/netinet/ip_carp.c (14.x) and ucarp 1.5.2.
//
// Layout:
//
//	advert.go          36-byte advertisement header, checksum
//	auth.go            HMAC-SHA1 key and message
//	counter.go         carpd's counter: marker, timing, sequence under the
//	                   HMAC (docs/carp-authentication.md)
//	machine.go         INIT/BACKUP/MASTER state machine, timers, receive rules
//	vhost.go           VHost: the goroutine owning one vhid (send counter,
//	                   send-error demotion, bow-out, VIP actions); its seams
//	                   Sender and Announcer
//	receive.go         Deliver: the input checks on the readers' goroutines
//	                   before queueing, the counter rules, drop counters
//	clock.go           Clock, the VHost's time source (WithClock)
//	iface_linux.go     Iface: raw IPv4/IPv6 sockets and the AF_PACKET sender
//	                   of one interface, reader goroutines dispatching by vhid
//	iface_others.go    Iface stub for other systems
//	constants.go       protocol and implementation constants
//	errors.go          decoding errors
//	carptest/          a fake Clock, and real VHosts on an in-memory
//	                   segment for multi-router tests
package carp
