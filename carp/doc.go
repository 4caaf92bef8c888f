// Package carp implements the Common Address Redundancy Protocol as spoken by
// OpenBSD carp(4), FreeBSD carp(4) and ucarp: the advertisement codec and its
// HMAC-SHA1 authentication (pure), the per-vhid state machine (pure, time
// passed in), and the runner that drives a state machine from raw sockets and
// timers.
//
// Wire format and behaviour follow shared/specs/carp.md, which was derived
// from OpenBSD sys/netinet/ip_carp.c rev 1.370, FreeBSD sys/netinet/ip_carp.c
// (14.x) and ucarp 1.5.2. Section references in comments (§1.2 and so on) are
// to that document.
//
// Layout:
//
//	advert.go     36-byte advertisement header, checksum        (§1.2)
//	auth.go       HMAC-SHA1 key and message                      (§2)
//	counter.go    carpd's counter: marker, timing, sequence      (docs/carp-authentication.md)
//	machine.go    INIT/BACKUP/MASTER state machine, timers       (§3)
//	constants.go  protocol and implementation constants
//	runner*.go    sockets, timers and the goroutine owning one vhid
package carp
