package carp

// Internals the external tests (package carp_test, which can import
// carptest) need.
const OffCounter = offCounter

var (
	SeqClock = seqClock
	SeqNewer = seqNewer
)
