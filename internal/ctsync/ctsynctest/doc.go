// Package ctsynctest has fakes for the unit tests of the sync engine and
// of what drives it: Kernel, an in-memory conntrack table that fits
// ctsync.Kernel, and Clock, a clock that moves only when told to (it
// fits ctsync.Clock). The real table is exercised by internal/ctsync/kernel and
// the namespace tests in e2e/.
package ctsynctest
