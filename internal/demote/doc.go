// Package demote keeps CARP demotion counters the way OpenBSD does: in
// groups. Every vhid is in the group "carp" and in the groups of its
// `list group`; each group's counter is the sum of named sources (a down
// link, a tracker, maintenance, a value set by another program), and a
// vhid advertises the sum of its groups' counters and its own sources,
// capped at 255, in the demote byte of its advertisements
// (docs/carp-protocol.md#demotion).
//
// The package is pure: no goroutines, no clock of its own (callers pass
// the time), no logging. The daemon owns a Table on its loop.
package demote
